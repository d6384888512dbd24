"""Where one completion goes in Coachview: its person, training-request component and
participation, from the course's roster when the course is in demand, else by direct look-ups
(three: the person, cached, and the learner's rows of each entity)."""

from __future__ import annotations

from collections.abc import Sequence

from gradesync.coachview.cache import Directory
from gradesync.coachview.client import PARTICIPATION, REQUEST_COMPONENT, CoachviewClient
from gradesync.coachview.rosters import Rosters
from gradesync.entities import Component, Person
from gradesync.errors import Unresolved
from gradesync.matching import choose_participation, choose_request_component
from gradesync.roster import Placement, place_in_roster


def place(
    directory: Directory,
    rosters: Rosters,
    lms_person_id: str,
    course_ref: str,
    fields: Sequence[str],
) -> Placement:
    if rosters.wanted(course_ref):
        placed = _by_roster(directory, rosters, lms_person_id, course_ref, fields)
        if placed is not None:
            return placed
    # The person first: an unknown person is what an operator fixes first (gradesync report).
    person = directory.person(lms_person_id, fields)
    return direct(directory.client, person, directory.components(course_ref))


def _by_roster(
    directory: Directory,
    rosters: Rosters,
    lms_person_id: str,
    course_ref: str,
    fields: Sequence[str],
) -> Placement | None:
    try:
        components = directory.components(course_ref)
    except Unresolved:
        return None  # the direct look-ups say what is missing, the person first
    roster = rosters.get(course_ref, components, fields)
    match = None if roster is None else place_in_roster(roster, components, lms_person_id, fields)
    if match is None:
        return None
    if not match.earlier_fields:
        return match.placement
    # Matched on a later field: a person outside the roster holding the id in an earlier field
    # wins, as a direct match would have it.
    try:
        person = directory.person(lms_person_id, match.earlier_fields)
    except Unresolved:
        return match.placement
    return direct(directory.client, person, components)


def direct(client: CoachviewClient, person: Person, components: Sequence[Component]) -> Placement:
    ids = [c.id for c in components]
    request = choose_request_component(components, client.rows(REQUEST_COMPONENT, ids, person.id))
    participation = choose_participation(request, client.rows(PARTICIPATION, ids, person.id))
    return Placement(person=person, request=request, participation=participation)
