"""What an LMS API returns is held to the event's own rules before the ledger stores it."""

from __future__ import annotations

import pytest

from gradesync.errors import Permanent
from gradesync.lms.enrich import Enrichment, checked


@pytest.mark.parametrize("grade", ["Infinity", "NaN", "-1", "x" * 33, "8\x00"])
def test_a_grade_from_the_lms_that_is_not_a_grade_fails_the_record(grade: str) -> None:
    with pytest.raises(Permanent) as info:
        checked(Enrichment(grade=grade))
    assert info.value.code == "invalid_grade"
    assert info.value.message.startswith("the LMS's grade ")  # whose grade, in the record


@pytest.mark.parametrize("field", ["match_person_id", "match_course_id"])
@pytest.mark.parametrize("value", ["\u0085", "a\u200bb", "x" * 256])
def test_an_id_from_the_lms_that_is_not_an_id_fails_the_record(field: str, value: str) -> None:
    with pytest.raises(Permanent) as info:
        checked(Enrichment(**{field: value}))
    assert info.value.code == "invalid_lms_id" and field in info.value.message


def test_usable_answers_are_normalised_like_events() -> None:
    found = checked(Enrichment(grade=" 8,5 ", match_person_id=" Jose\u0301 ", note="n"))
    assert (found.grade, found.match_person_id, found.note) == ("8,5", "José", "n")
