from __future__ import annotations

from datetime import date

import pytest

from gradesync.entities import Component, Participation, Person, RequestComponent
from gradesync.errors import Permanent, Unresolved
from gradesync.matching import (
    choose_participation,
    choose_person,
    choose_request_component,
    elearning_components,
    no_person,
)
from gradesync.steps import ResultKept, Skip, Write, plan_participation, plan_request_component

DAY = date(2026, 11, 20)
SEAT = {"id": 1, "enrolment_id": 7001, "component_id": 9001, "person_id": 1001}


def participation(**fields: object) -> Participation:
    return Participation.model_validate({**SEAT, **fields})


def ec(**fields: object) -> RequestComponent:
    return RequestComponent.model_validate({**SEAT, **fields})


@pytest.mark.parametrize("grade", [None, "8.5"])
@pytest.mark.parametrize("result", [None, "8.5", "6.0"])
@pytest.mark.parametrize("attendance", [False, True])
@pytest.mark.parametrize("passed", [False, True])
def test_the_participation_write_carries_exactly_what_is_missing(
    grade: str | None, result: str | None, attendance: bool, passed: bool
) -> None:
    current = participation(result=result, attendance=attendance, passed=passed)
    expected: dict[str, object] = {}
    if grade is not None and result is None:
        expected["result"] = grade
    if not attendance:
        expected["attendance"] = True
    if not passed:
        expected["passed"] = True
    # First result wins: another registered result stays, both grades noted.
    kept = ResultKept(existing=result, new=grade) if grade and result not in (None, grade) else None
    decision = plan_participation(current, grade)
    assert decision == (Write(fields=expected, kept=kept) if expected else Skip(kept=kept))


@pytest.mark.parametrize("completed", [False, True])
@pytest.mark.parametrize("approved", [False, True])
def test_the_request_component_write_carries_exactly_what_is_missing(
    completed: bool, approved: bool
) -> None:
    earlier = date(2026, 1, 1) if approved else None
    current = ec(completed=completed, approved=approved, approval_date=earlier)
    expected: dict[str, object] = {} if completed else {"completed": True}
    if not approved:  # the approval is dated the LMS completion day, an earlier one kept
        expected |= {"approved": True, "approval_date": "2026-11-20"}
    decision = plan_request_component(current, DAY)
    assert decision == (Write(fields=expected) if expected else Skip())


def test_the_kept_result_notes_both_grades() -> None:
    kept = plan_participation(participation(result="6.0"), "9.0").kept
    assert kept is not None
    assert kept.note() == {"code": "result_kept_existing", "existing": "6.0", "new": "9.0"}


def test_person_match() -> None:
    anna = Person(id=1001, extern_id="57")
    assert choose_person("externId", [anna, anna]) == anna
    assert choose_person("externId", []) is None
    with pytest.raises(Permanent) as info:
        choose_person("externId", [anna, Person(id=1002, extern_id="57")])
    assert info.value.code == "ambiguous_person"


def test_course_match_is_exact() -> None:
    comps = [
        Component(id=9001, training_id=501, elearning_code="12"),
        Component(id=9005, training_id=505, elearning_code="120"),
    ]
    assert [c.id for c in elearning_components("12", comps)] == [9001]
    with pytest.raises(Unresolved) as info:
        elearning_components("77", comps)
    assert info.value.reason == "unknown_course"


def test_enrolment_choice_prefers_the_open_newest_enrolment() -> None:
    comps = [Component(id=9001, training_id=501, elearning_code="12")]
    old = ec(id=1, enrolment_id=7001, approved=True)
    new = ec(id=2, enrolment_id=7005)
    newer_done = ec(id=3, enrolment_id=7009, approved=True)
    assert choose_request_component(comps, [old, newer_done, new]).id == 2
    assert choose_request_component(comps, [old, newer_done]).id == 3


def test_not_enrolled() -> None:
    comps = [Component(id=9001, training_id=501, elearning_code="12")]
    with pytest.raises(Unresolved) as info:
        choose_request_component(comps, [ec(component_id=9002)])
    assert info.value.reason == "not_enrolled"


def test_each_unresolved_outcome_says_what_is_missing() -> None:
    comps = [Component(id=9001, training_id=501, elearning_code="12")]
    with pytest.raises(Unresolved) as course:
        elearning_components("77", comps)
    assert str(course.value) == "no Coachview e-learning component has this course id"
    with pytest.raises(Unresolved) as enrolment:
        choose_request_component(comps, [ec(component_id=9002)])
    assert str(enrolment.value) == (
        "the learner has no enrolment on a training with this component"
    )
    person = no_person(["externId", "email"])
    assert (person.reason, person.code) == ("unknown_person", "unknown_person")
    assert str(person) == "no Coachview person has this LMS id as externId or email"


def test_an_ambiguous_person_names_the_count_and_the_field() -> None:
    twins = [Person(id=1001, extern_id="57"), Person(id=1002, extern_id="57")]
    with pytest.raises(Permanent) as info:
        choose_person("externId", [*twins, twins[0]])
    assert str(info.value) == "2 Coachview persons share this LMS id on field 'externId'"


def test_the_open_enrolment_wins_over_a_newer_approved_one_on_another_component() -> None:
    comps = [
        Component(id=9001, training_id=501, elearning_code="12"),
        Component(id=9003, training_id=503, elearning_code="12"),
    ]
    other_training = ec(id=4, enrolment_id=7010, component_id=9003, approved=True)
    open_one = ec(id=5, enrolment_id=7002, component_id=9001)
    elsewhere = ec(id=6, enrolment_id=7020, component_id=9999)
    assert choose_request_component(comps, [other_training, open_one, elsewhere]).id == 5


def test_the_participation_is_the_same_persons_in_the_same_component_and_enrolment() -> None:
    request = ec(id=2, enrolment_id=7005)
    other_enrolment = participation(id=10, enrolment_id=7001)
    mine = participation(id=11, enrolment_id=7005)
    other_person = participation(id=12, enrolment_id=7005, person_id=1002)
    other_component = participation(id=13, enrolment_id=7005, component_id=9002)
    candidates = [other_enrolment, mine, other_person, other_component]
    assert choose_participation(request, candidates) == mine


def test_a_participation_without_an_enrolment_is_matched_by_person_and_component() -> None:
    request = ec(id=2, enrolment_id=7005)
    older, newer = participation(id=10, enrolment_id=None), participation(id=11, enrolment_id=None)
    assert choose_participation(request, [newer, older]) == newer
    # One linked to this enrolment wins over unlinked ones.
    linked = participation(id=9, enrolment_id=7005)
    assert choose_participation(request, [newer, linked]) == linked


def test_no_participation_is_not_enrolled() -> None:
    with pytest.raises(Unresolved) as info:
        choose_participation(ec(), [participation(enrolment_id=7099)])
    assert info.value.reason == "not_enrolled"
