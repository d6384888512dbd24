"""The result link names the learner by the LMS person id, in the elements COACHVIEW_PERSON_MATCH
names, and the course by the LMS course id: no Coachview look-up before the POST (issue 12)."""

from __future__ import annotations

from datetime import date

import pytest

from gradesync.coachview.resultlink import ResultMessage, learner, render
from gradesync.errors import Unresolved


@pytest.mark.parametrize(
    ("lms_id", "order", "expected"),
    [
        ("57", ("externId", "id"), ("57", 57)),
        ("57", ("id",), (None, 57)),
        ("EXT-0093", ("externId", "id"), ("EXT-0093", None)),
        ("0042", ("id", "externId"), ("0042", 42)),
    ],
)
def test_the_learner_is_named_by_the_fields_coachview_person_match_names(
    lms_id: str, order: tuple[str, ...], expected: tuple[str | None, int | None]
) -> None:
    assert learner(lms_id, order) == expected


@pytest.mark.parametrize("lms_id", ["EXT-0093", "١٠٠١", "12a"])
def test_an_id_no_field_can_carry_is_unknown_person_before_anything_is_sent(lms_id: str) -> None:
    with pytest.raises(Unresolved) as info:
        learner(lms_id, ("id",))
    assert info.value.code == "unknown_person"


def test_the_message_carries_lms_ids_only() -> None:
    message = ResultMessage(
        extern_id="57", person_id=None, course_id="12", grade="8", completed_on=date(2026, 1, 2)
    )
    body = render(message).decode()
    assert "<ExternId>57</ExternId><Cursusnummer>12</Cursusnummer>" in body
    assert "PersoonId" not in body
