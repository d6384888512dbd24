from __future__ import annotations

from datetime import date

import pytest

from gradesync.entities import Component, EnrolmentComponent, Person
from gradesync.errors import Permanent, Unresolved
from gradesync.matching import (
    choose_enrolment_component,
    choose_person,
    elearning_components,
    no_person,
)
from gradesync.steps import KeepExisting, Skip, Write, plan

DAY = date(2026, 11, 20)


def ec(**fields: object) -> EnrolmentComponent:
    base = {"id": 1, "enrolment_id": 7001, "component_id": 9001, "person_id": 1001}
    return EnrolmentComponent.model_validate({**base, **fields})


def test_result_written_when_none_registered() -> None:
    assert plan("result", ec(), "8.5", DAY) == Write(fields={"result": "8.5"})


def test_first_result_wins() -> None:
    assert plan("result", ec(result="6.0"), "9.0", DAY) == KeepExisting(existing="6.0", new="9.0")


def test_our_own_result_is_not_written_again() -> None:
    assert plan("result", ec(result="8.5"), "8.5", DAY) == Skip(reason="already_done")


def test_no_grade_skips_only_the_result() -> None:
    assert plan("result", ec(), None, DAY) == Skip(reason="no_grade")
    assert plan("attendance", ec(), None, DAY) == Write(fields={"attendance": True})


@pytest.mark.parametrize("step", ["attendance", "passed", "completed"])
def test_ticks_are_read_before_write(step: str) -> None:
    assert plan(step, ec(), "8", DAY) == Write(fields={step: True})  # type: ignore[arg-type]
    assert plan(step, ec(**{step: True}), "8", DAY) == Skip(reason="already_done")  # type: ignore[arg-type]


def test_approval_carries_the_lms_date_and_is_never_redone() -> None:
    assert plan("approved", ec(), "8", DAY) == Write(
        fields={"approved": True, "approval_date": "2026-11-20"}
    )
    assert plan("approved", ec(approved=True, approval_date=date(2026, 1, 1)), "8", DAY) == Skip(
        reason="already_done"
    )


def test_person_match() -> None:
    anna = Person(id=1001, extern_id="57")
    assert choose_person("externId", "57", [anna, anna]) == anna
    assert choose_person("externId", "57", []) is None
    with pytest.raises(Permanent) as info:
        choose_person("externId", "57", [anna, Person(id=1002, extern_id="57")])
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
    assert choose_enrolment_component(comps, [old, newer_done, new]).id == 2
    assert choose_enrolment_component(comps, [old, newer_done]).id == 3


def test_not_enrolled() -> None:
    comps = [Component(id=9001, training_id=501, elearning_code="12")]
    with pytest.raises(Unresolved) as info:
        choose_enrolment_component(comps, [ec(component_id=9002)])
    assert info.value.reason == "not_enrolled"


def test_each_unresolved_outcome_says_what_is_missing() -> None:
    comps = [Component(id=9001, training_id=501, elearning_code="12")]
    with pytest.raises(Unresolved) as course:
        elearning_components("77", comps)
    assert str(course.value) == "no Coachview e-learning component has this course id"
    with pytest.raises(Unresolved) as enrolment:
        choose_enrolment_component(comps, [ec(component_id=9002)])
    assert str(enrolment.value) == (
        "the learner has no enrolment on a training with this component"
    )
    person = no_person(["externId", "email"])
    assert (person.reason, person.code) == ("unknown_person", "unknown_person")
    assert str(person) == "no Coachview person has this LMS id as externId or email"


def test_an_ambiguous_person_names_the_count_and_the_field() -> None:
    twins = [Person(id=1001, extern_id="57"), Person(id=1002, extern_id="57")]
    with pytest.raises(Permanent) as info:
        choose_person("externId", "57", [*twins, twins[0]])
    assert str(info.value) == "2 Coachview persons share this LMS id on field 'externId'"


def test_the_open_enrolment_wins_over_a_newer_approved_one_on_another_component() -> None:
    comps = [
        Component(id=9001, training_id=501, elearning_code="12"),
        Component(id=9003, training_id=503, elearning_code="12"),
    ]
    other_training = ec(id=4, enrolment_id=7010, component_id=9003, approved=True)
    open_one = ec(id=5, enrolment_id=7002, component_id=9001)
    elsewhere = ec(id=6, enrolment_id=7020, component_id=9999)
    assert choose_enrolment_component(comps, [other_training, open_one, elsewhere]).id == 5
