from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from gradesync.event import CompletionEvent, describe, field_errors, parse_event

AMS = ZoneInfo("Europe/Amsterdam")
BASE: dict[str, Any] = {
    "source": "moodle",
    "source_instance": "https://lms.example.nl",
    "event_id": "moodle-course_completed-88123",
    "person_id": "42",
    "course_id": "77",
    "grade": "8.5",
    "completed_at": "2026-11-20T14:03:00+01:00",
}


def errors_for(**overrides: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        CompletionEvent.model_validate({**BASE, **overrides})
    return {e["field"]: e["message"] for e in field_errors(info.value)}


def test_contract_example_parses() -> None:
    event = CompletionEvent.model_validate(BASE)
    assert event.key.text() == "moodle|https://lms.example.nl|42|77"
    assert event.approval_date(AMS) == date(2026, 11, 20)
    assert event.id == "moodle-course_completed-88123"


def test_defaults_and_derived_event_id_is_deterministic() -> None:
    data = {k: v for k, v in BASE.items() if k not in ("event_id", "source_instance")}
    one, two = CompletionEvent.model_validate(data), CompletionEvent.model_validate(data)
    assert one.source_instance == "default"
    assert one.id == two.id and one.id.startswith("derived-")
    other = CompletionEvent.model_validate({**data, "grade": "9"})
    assert other.id != one.id


def test_late_utc_instant_is_next_day_in_amsterdam() -> None:
    event = CompletionEvent.model_validate({**BASE, "completed_at": "2026-11-20T23:30:00Z"})
    assert event.approval_date(AMS) == date(2026, 11, 21)


def test_epoch_seconds_accepted() -> None:
    event = CompletionEvent.model_validate({**BASE, "completed_at": 1795179780})
    assert event.completed_at.utcoffset() is not None


def test_numeric_ids_and_grades_become_text() -> None:
    event = CompletionEvent.model_validate(
        {**BASE, "person_id": 42, "course_id": 77, "grade": 8.50}
    )
    assert (event.person_id, event.course_id, event.grade) == ("42", "77", "8.5")


@pytest.mark.parametrize("grade", [None, "", "  "])
def test_missing_grade_is_allowed(grade: Any) -> None:
    assert CompletionEvent.model_validate({**BASE, "grade": grade}).grade is None


def test_naive_timestamp_rejected_naming_the_field() -> None:
    errs = errors_for(completed_at="2026-11-20T14:03:00")
    assert "completed_at" in errs and "offset" in errs["completed_at"]


def test_unknown_fields_are_named() -> None:
    errs = errors_for(colour="blue", shoe_size=44)
    assert errs == {"colour": "unknown field", "shoe_size": "unknown field"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("source", "blackboard"),
        ("person_id", ""),
        ("person_id", True),
        ("course_id", None),
        ("grade", True),
        ("grade", {"raw": 8}),
        ("completed_at", "yesterday"),
        ("completed_at", True),
        ("source_instance", ""),
    ],
)
def test_bad_values_are_rejected_naming_the_field(field: str, value: Any) -> None:
    assert field in errors_for(**{field: value})


def test_missing_required_fields() -> None:
    with pytest.raises(ValidationError) as info:
        CompletionEvent.model_validate({"source": "moodle"})
    text = describe(info.value)
    for field in ("person_id", "course_id", "completed_at"):
        assert f"{field}: field required" in text


def test_parse_event_rejects_non_objects() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        parse_event(["not", "an", "object"])


def test_explicit_null_event_id_is_derived() -> None:
    assert CompletionEvent.model_validate({**BASE, "event_id": None}).id.startswith("derived-")


def test_overlong_grade_rejected() -> None:
    assert "grade" in errors_for(grade="9" * 40)
