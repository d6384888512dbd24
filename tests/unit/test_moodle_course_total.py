"""Moodle's course total read as a grade, or the reason it is none (the record's note).

The items are ``gradereport_user_get_grade_items``' (moodle/moodle
``grade/report/user/classes/report/user.php``; tests/conformance/moodle/grade-items-*.json).
"""

from __future__ import annotations

from typing import Any

import pytest

from gradesync.lms.moodle import display_text, grade_text, why_not_a_grade


@pytest.mark.parametrize(
    "item",
    [
        {"graderaw": 8, "grademin": 0},  # no maximum
        {"graderaw": 8, "grademin": "n/a", "grademax": 10},  # a minimum that is no number
    ],
)
def test_a_total_without_a_usable_range_is_no_grade(item: dict[str, Any]) -> None:
    assert grade_text(item, "dutch") is None
    assert why_not_a_grade(item) == (
        "the course total's graderaw is outside grademin–grademax, or the range is missing"
    )


@pytest.mark.parametrize(
    ("shown", "text"),
    [
        ("Error", None),  # lang/en/moodle.php 'error': the total needs an update
        ("ERROR", None),
        ("-", None),
        ("&amp;nbsp;", None),  # an empty cell, escaped once more
        ("<i class='icon fa fa-check'></i>80,00", "80,00"),
    ],
)
def test_display_text_that_shows_no_grade_is_none(shown: str, text: str | None) -> None:
    assert display_text(shown) == text
    assert (
        grade_text({"graderaw": 80, "grademax": 100, "gradeformatted": shown}, "formatted") == text
    )


def test_why_not_names_every_flag_and_a_missing_number() -> None:
    flagged = {"graderaw": None, "gradeneedsupdate": True, "gradeishidden": True}
    assert why_not_a_grade(flagged) == (
        "the course total is marked gradeneedsupdate, gradeishidden"
    )
    assert why_not_a_grade({"graderaw": None}) == "the course total has no grade yet"
