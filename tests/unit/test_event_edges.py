"""The canonical event at its edges: what is refused, what is normalised, and what stays
stable across versions (completion keys and derived event ids are stored: changing them would
re-key every record after an upgrade)."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gradesync.event import CompletionEvent, CompletionKey, field_errors
from gradesync.ledger import Ledger, Record, utcnow
from tests.unit.test_event import BASE as EVENT_BASE

BASE: dict[str, Any] = {k: v for k, v in EVENT_BASE.items() if k != "event_id"}


def refused(**overrides: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        CompletionEvent.model_validate({**BASE, **overrides})
    return {e["field"]: e["message"] for e in field_errors(info.value)}


# -- ids: one normalisation at the edge ----------------------------------------------------------

BLANK_LOOKING = ["\u0085", "\u00a0", "\u2028", "\u3000", " \t\n", "\u200b", "\ufeff", "\x1c"]


@pytest.mark.parametrize("field", ["person_id", "course_id", "source_instance", "event_id"])
@pytest.mark.parametrize("value", BLANK_LOOKING)
def test_blank_looking_ids_are_refused_naming_the_field(field: str, value: str) -> None:
    assert field in refused(**{field: value})


@pytest.mark.parametrize("value", ["a\u200bb", "a\x00b", "a\x1fb", "a\u202eb"])
def test_ids_with_control_or_invisible_characters_are_refused(value: str) -> None:
    assert "control or invisible" in refused(person_id=value)["person_id"]


def test_ids_are_stripped_and_nfc_normalised() -> None:
    composed = CompletionEvent.model_validate({**BASE, "person_id": "\u00a0 Jos\u00e9 \u3000"})
    decomposed = CompletionEvent.model_validate({**BASE, "person_id": "Jose\u0301"})
    assert composed.person_id == decomposed.person_id == "José"
    assert composed.key == decomposed.key


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    person=st.one_of(st.text(max_size=12), st.integers()),
    course=st.text(max_size=12),
    grade=st.one_of(st.none(), st.text(max_size=40), st.floats(), st.integers(), st.decimals()),
)
def test_every_stored_record_loads_back(person: Any, course: Any, grade: Any) -> None:
    """Whatever the edge accepts, the ledger can read again: write and read use one model."""
    try:
        event = CompletionEvent.model_validate(
            {**BASE, "person_id": person, "course_id": course, "grade": grade}
        )
    except ValidationError:
        return
    ledger = Ledger(fakeredis.FakeRedis())
    rid = ledger.admit(event, utcnow()).record.id
    (listed,) = ledger.list()
    assert isinstance(listed, Record) and listed.event == event
    assert ledger.get(rid) == listed


# -- grades --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "grade",
    [
        *(1e308, 10**40, 10**4000, "1e999999", 1_000_001, "1000000.5"),
        *("Infinity", "-Infinity", "NaN", "sNaN", "inf"),
        *(-1, -0.5, "-2", "-0"),
    ],
)
def test_grades_that_are_not_grades_are_refused(grade: Any) -> None:
    assert "grade" in refused(grade=grade)


@pytest.mark.parametrize(
    ("grade", "stored"),
    [
        (8.5, "8.5"),
        (8.50, "8.5"),
        (10, "10"),
        (1e1, "10"),
        ("7,5", "7,5"),
        ("voldoende", "voldoende"),
    ],
)
def test_finite_numbers_and_marks_are_kept(grade: Any, stored: str) -> None:
    event = CompletionEvent.model_validate({**BASE, "grade": grade})
    assert event.grade == stored
    assert CompletionEvent.model_validate_json(event.model_dump_json()) == event


def test_the_grade_length_limit_is_exact() -> None:
    assert CompletionEvent.model_validate({**BASE, "grade": "x" * 32}).grade == "x" * 32
    assert "at most 32" in refused(grade="x" * 33)["grade"]
    assert "at most 32" in refused(grade=10**32)["grade"]
    assert CompletionEvent.model_validate({**BASE, "grade": 1_000_000}).grade == "1000000"
    assert "at most 1,000,000" in refused(grade=1_000_000.01)["grade"]


# -- timestamps ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:00:00-05:00",
        "1999-12-31T23:59:59Z",
        "2999-01-01T00:00:00Z",
        1e20,
        -(10**12),
        float("inf"),
        float("nan"),
    ],
)
def test_implausible_completion_instants_are_refused(value: Any) -> None:
    assert "completed_at" in refused(completed_at=value)


def test_the_plausible_window_starts_in_2000() -> None:
    assert CompletionEvent.model_validate({**BASE, "completed_at": "2000-01-01T00:00:00Z"})
    assert "completed_at" in refused(completed_at="1999-12-31T23:59:59Z")


# -- keys: unambiguous and stable ----------------------------------------------------------------


def test_two_completions_never_share_a_key() -> None:
    one = CompletionKey(source="moodle", source_instance="lms", person_id="a|b", course_id="c")
    two = CompletionKey(source="moodle", source_instance="lms|a", person_id="b", course_id="c")
    assert one.text() != two.text() and one.id != two.id
    assert one.text() == "moodle|lms|a%7Cb|c"
    percent = CompletionKey(
        source="moodle", source_instance="lms", person_id="a%7Cb", course_id="c"
    )
    assert percent.id != one.id and CompletionKey.from_text(percent.text()) == percent
    assert CompletionKey.from_text(one.text()) == one


def test_keys_and_derived_ids_of_known_inputs_never_change() -> None:
    """Golden values, computed by the version before the key encoding changed: a key without
    ``|`` or ``%`` keeps its id, so records stored by earlier versions are found again."""
    event = CompletionEvent.model_validate(BASE)
    assert event.key.text() == "moodle|https://lms.example.nl|42|77"
    assert event.key.id == "2950623893ba5cd88021"
    assert event.id == "derived-72b9ef1ef042329765ea8e01"
    for same_instant in ("2026-11-20T13:03:00Z", "2026-11-20T13:03:00+00:00", 1795179780):
        again = CompletionEvent.model_validate({**BASE, "completed_at": same_instant})
        assert again.id == event.id
