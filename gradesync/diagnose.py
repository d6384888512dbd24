"""`gradesync diagnose`: which of person, course and enrolment Coachview lacks for one record.

The result link's 404 does not say which; telling them apart takes REST look-ups, so they run
only when an operator asks. Read-only and uncached (the point is what Coachview holds now);
each look-up counts against the daily budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel

from gradesync.coachview.cache import find_person
from gradesync.coachview.client import CoachviewClient
from gradesync.coachview.placement import direct
from gradesync.entities import Component, Person
from gradesync.errors import Unresolved, UnresolvedReason
from gradesync.matching import elearning_components, no_person


class Check(BaseModel):
    what: Literal["person", "course", "enrolment"]
    # None: not looked up (the enrolment needs the person and the course first).
    found: bool | None
    detail: str


class Placement(BaseModel):
    checks: list[Check]
    # The first thing missing, named as the ledger's codes name it; None: Coachview can place it.
    missing: UnresolvedReason | None


def _person(
    client: CoachviewClient, lms_person_id: str, fields: Sequence[str]
) -> tuple[Check, Person | None]:
    matched = find_person(client, lms_person_id, fields)
    if matched is None:
        return Check(what="person", found=False, detail=no_person(fields).message), None
    field, found = matched
    return Check(
        what="person", found=True, detail=f"Coachview person {found.id} (on {field})"
    ), found


def _course(client: CoachviewClient, course_id: str) -> tuple[Check, list[Component]]:
    try:
        components = elearning_components(course_id, client.components_for_course(course_id))
    except Unresolved as exc:
        return Check(what="course", found=False, detail=exc.message), []
    ids = ", ".join(str(c.id) for c in components)
    return Check(what="course", found=True, detail=f"e-learning component(s) {ids}"), components


def _enrolment(client: CoachviewClient, person: Person, components: list[Component]) -> Check:
    """The same direct look-ups the pipeline's ``resolve`` makes: the learner's training-request
    component and participation (a roster is never used here: it may be minutes old)."""
    try:
        placed = direct(client, person, components)
    except Unresolved as exc:
        return Check(what="enrolment", found=False, detail=exc.message)
    return Check(
        what="enrolment",
        found=True,
        detail=f"enrolment {placed.request.enrolment_id}, component {placed.request.component_id}",
    )


def diagnose(
    client: CoachviewClient, lms_person_id: str, fields: Sequence[str], course_id: str
) -> Placement:
    person, found = _person(client, lms_person_id, fields)
    course, components = _course(client, course_id)
    if found is not None and components:
        enrolment = _enrolment(client, found, components)
    else:
        enrolment = Check(what="enrolment", found=None, detail="needs the person and the course")
    missing: UnresolvedReason | None = None
    if not person.found:
        missing = "unknown_person"
    elif not course.found:
        missing = "unknown_course"
    elif not enrolment.found:
        missing = "not_enrolled"
    return Placement(checks=[person, course, enrolment], missing=missing)
