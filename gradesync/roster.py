"""A course's roster and the pure decisions over it: when to read one, and where a learner
stands in it.

A roster is every training-request component and participation of a course's components, and
the persons they name, read in a few paged look-ups instead of three per completion. It is a
snapshot: a learner it does not place (enrolled since, or matched only outside it) is looked up
directly, and its etags only condition the writes (a stale one is a 412 and a re-read).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from gradesync.entities import Component, Participation, Person, RequestComponent
from gradesync.errors import Unresolved
from gradesync.matching import choose_participation, choose_person, choose_request_component

# Completions of one course asked for within the roster's lifetime before one is read: a
# completion looked up directly costs DIRECT_READS reads, a roster at least 3.
DEMAND = 2
DIRECT_READS = 3


class RosterPerson(BaseModel):
    """A person with the values of the match fields (COACHVIEW_PERSON_MATCH) it was read with."""

    model_config = ConfigDict(frozen=True)

    id: int
    codes: dict[str, str | None]


class Roster(BaseModel):
    model_config = ConfigDict(frozen=True)

    persons: list[RosterPerson]
    requests: list[RequestComponent]
    participations: list[Participation]
    # The requests reading it took (remembered per course: see wants_roster).
    reads: int


class Placement(BaseModel):
    """Where one completion goes: the person, their training-request component and their
    participation (with the etags the writes are conditioned on)."""

    model_config = ConfigDict(frozen=True)

    person: Person
    request: RequestComponent
    participation: Participation


class RosterMatch(BaseModel):
    """The roster's answer. ``earlier_fields``: match fields tried before the one that matched;
    a person outside the roster may hold the LMS id in one of them and would win the global
    match, so those must be looked up directly before this placement is used."""

    model_config = ConfigDict(frozen=True)

    placement: Placement
    earlier_fields: tuple[str, ...]


def wants_roster(demand: int, ttl_s: int, last_reads: int | None) -> bool:
    """Read the course's roster (or use the cached one) rather than look the learner up
    directly: only when rosters are on (``ttl_s``) and the course is in demand, more so when
    its last roster took many reads (``last_reads``; a big course's roster pays off only for
    as many completions as its reads would cost looked up one by one)."""
    needed = max(DEMAND, -(-(last_reads or 0) // DIRECT_READS))
    return ttl_s > 0 and demand >= needed


def list_reads(rows: int, page_size: int) -> int:
    """The paged reads a list look-up answering ``rows`` rows took (a full page asks again)."""
    return rows // page_size + 1


def place_in_roster(
    roster: Roster, components: Sequence[Component], lms_person_id: str, fields: Sequence[str]
) -> RosterMatch | None:
    """The learner's placement by the roster, or None when the roster cannot place them (not
    in it, or no open enrolment in it): the direct look-ups decide then."""
    matched = _person(roster, lms_person_id, fields)
    if matched is None:
        return None
    index, person = matched
    try:
        request = choose_request_component(
            components, [rc for rc in roster.requests if rc.person_id == person.id]
        )
        participation = choose_participation(request, roster.participations)
    except Unresolved:
        return None
    if request.approved:
        # No open request component in the snapshot: a re-take enrolled since it was read
        # would be missed (and the completion "delivered" onto the closed one), so only a
        # fresh direct look-up may conclude there is none.
        return None
    return RosterMatch(
        placement=Placement(person=person, request=request, participation=participation),
        earlier_fields=tuple(fields[:index]),
    )


def _person(roster: Roster, lms_person_id: str, fields: Sequence[str]) -> tuple[int, Person] | None:
    """The roster's person with the LMS id in the first match field that has one, and which."""
    for index, field in enumerate(fields):
        matches = [Person(id=p.id) for p in roster.persons if p.codes.get(field) == lms_person_id]
        person = choose_person(field, matches)
        if person is not None:
            return index, person
    return None
