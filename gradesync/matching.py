"""Pure matching rules: which Coachview person, component, training-request component and
participation an LMS completion is for.

No I/O here; the worker feeds in what Coachview returned and acts on the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gradesync.entities import Component, Participation, Person, RequestComponent
from gradesync.errors import Permanent, Unresolved


def choose_person(field: str, matches: Sequence[Person]) -> Person | None:
    """One match wins; none means "try the next field"; several is a Coachview data problem."""
    if not matches:
        return None
    distinct = {p.id: p for p in matches}
    if len(distinct) > 1:
        raise Permanent(
            f"{len(distinct)} Coachview persons share this LMS id on field {field!r}",
            code="ambiguous_person",
        )
    return next(iter(distinct.values()))


def no_person(fields: Iterable[str]) -> Unresolved:
    return Unresolved(
        "unknown_person", f"no Coachview person has this LMS id as {' or '.join(fields)}"
    )


def elearning_components(course_id: str, components: Sequence[Component]) -> list[Component]:
    """Components carrying exactly this LMS course id (the API filter may be looser)."""
    found = [c for c in components if c.elearning_code == course_id]
    if not found:
        raise Unresolved("unknown_course", "no Coachview e-learning component has this course id")
    return found


def choose_request_component(
    components: Sequence[Component], candidates: Sequence[RequestComponent]
) -> RequestComponent:
    """The learner's training-request component for one of these components.

    A learner enrolled twice (a re-take) has one per enrolment: the open one (not yet approved)
    is the one this completion belongs to; among equals the newest enrolment wins.
    """
    wanted = {c.id for c in components}
    mine = [rc for rc in candidates if rc.component_id in wanted]
    if not mine:
        raise Unresolved(
            "not_enrolled", "the learner has no enrolment on a training with this component"
        )
    return max(mine, key=lambda rc: (not rc.approved, rc.enrolment_id))


def choose_participation(
    request: RequestComponent, candidates: Sequence[Participation]
) -> Participation:
    """The participation of the same person in the same component; when Coachview links
    participations to enrolments, the one of this enrolment (a re-take has its own)."""
    mine = [
        p
        for p in candidates
        if p.person_id == request.person_id and p.component_id == request.component_id
    ]
    linked = [p for p in mine if p.enrolment_id == request.enrolment_id]
    unlinked = [p for p in mine if p.enrolment_id is None]
    chosen = linked or unlinked
    if not chosen:
        raise Unresolved(
            "not_enrolled", "the learner's enrolment has no participation in this component"
        )
    # Several unlinked ones (Coachview keeps no enrolment on them): the newest.
    return max(chosen, key=lambda p: p.id)
