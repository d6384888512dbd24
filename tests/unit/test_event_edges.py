"""The canonical event at its edges: what is refused, what is normalised, and what stays
stable across versions (completion keys and derived event ids are stored: changing them would
re-key every record after an upgrade)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any

import fakeredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from gradesync import event as event_module
from gradesync.event import (
    CompletionEvent,
    CompletionKey,
    describe,
    field_errors,
    instant_from_epoch,
    parse_event,
    plausible_instant,
)
from gradesync.ledger import Ledger, utcnow
from gradesync.record import Record
from tests.unit.test_event import BASE as EVENT_BASE

BASE: dict[str, Any] = {k: v for k, v in EVENT_BASE.items() if k != "event_id"}


NAIVE = "must carry a UTC offset (naive timestamps are ambiguous)"
OUTSIDE = "must lie between 2000-01-01 and a day from now"


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
    (listed,) = ledger.newest()
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
    small = "0." + "0" * 29 + "1"  # a numeric grade of exactly 32 characters
    assert CompletionEvent.model_validate({**BASE, "grade": small}).grade == small
    assert "at most 32" in refused(grade=small + "1")["grade"]
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


# -- every refusal says what is wrong, in words a sender can act on -------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("person_id", True, "must be a string or an integer, not a boolean"),
        ("person_id", 4.5, "must be a string or an integer"),
        ("course_id", None, "must be a string or an integer"),
        ("person_id", " \u3000", "must not be blank"),
        ("person_id", "a\x00b", "must not contain control or invisible characters"),
        ("person_id", "x" * 256, "must be at most 255 characters"),
        ("grade", False, "must be a string or a number, not a boolean"),
        ("grade", [8], "must be a string or a number"),
        ("grade", "NaN", "must be a finite number"),
        ("grade", float("nan"), "must be a finite number"),
        ("grade", Decimal("NaN"), "must be a finite number"),
        ("grade", "-1", "must not be negative"),
        ("grade", "9" * 33, "must be at most 32 characters"),
        ("grade", 1e-40, "must be at most 32 characters"),
        ("grade", -(10**40), "must be at most 32 characters"),
        # Past Python's int-to-text limit: refused before str() would raise its own error.
        pytest.param("grade", 10**5000, "must be at most 32 characters", id="grade-10**5000"),
        ("completed_at", True, "must be an ISO 8601 timestamp with offset or epoch seconds"),
        ("completed_at", float("inf"), "must be a finite number of epoch seconds"),
        ("completed_at", 1e20, "epoch seconds out of range"),
        ("completed_at", "2026-11-20T14:03:00", NAIVE),
        ("completed_at", "0001-01-01T00:00:00+01:00", "is out of range"),
        ("completed_at", "1999-12-31T23:59:59Z", OUTSIDE),
        ("completed_at", "9999-12-31T20:00:00Z", OUTSIDE),
    ],
)
@pytest.mark.usefixtures("far_host_zone")
def test_each_refusal_names_the_field_and_the_rule(field: str, value: Any, message: str) -> None:
    assert refused(**{field: value}) == {field: message}


def test_epoch_seconds_are_numbers_only() -> None:
    for value in (True, "1795179780", None):
        with pytest.raises(ValueError) as info:
            instant_from_epoch(value)
        assert str(info.value) == "must be epoch seconds"
    assert instant_from_epoch(1795179780) == datetime(2026, 11, 20, 13, 3, tzinfo=UTC)


class NoOffset(tzinfo):
    """A time zone that does not know its offset: as ambiguous as no zone at all."""

    def utcoffset(self, dt: datetime | None) -> None:
        return None

    def dst(self, dt: datetime | None) -> None:
        return None

    def tzname(self, dt: datetime | None) -> None:
        return None


def test_a_zone_without_an_offset_is_naive() -> None:
    with pytest.raises(ValueError) as info:
        plausible_instant(datetime(2026, 11, 20, 13, 3, tzinfo=NoOffset()))
    assert str(info.value) == NAIVE


def test_several_errors_are_listed_in_field_order() -> None:
    with pytest.raises(ValidationError) as info:
        CompletionEvent.model_validate({"source": "moodle", "person_id": "", "grade": -1})
    assert describe(info.value) == (
        "person_id: must not be blank; course_id: field required; "
        "grade: must not be negative; completed_at: field required"
    )


def test_nested_and_whole_body_errors_are_named() -> None:
    class Batch(BaseModel):
        events: list[CompletionEvent]

    with pytest.raises(ValidationError) as info:
        Batch.model_validate({"events": [BASE, {**BASE, "course_id": ""}]})
    assert field_errors(info.value) == [
        {"field": "events.1.course_id", "message": "must not be blank"}
    ]
    with pytest.raises(ValidationError) as info:
        CompletionEvent.model_validate([BASE])
    assert field_errors(info.value) == [
        {
            "field": "(body)",
            "message": "Input should be a valid dictionary or instance of CompletionEvent",
        }
    ]


def test_parse_event_names_what_it_got() -> None:
    assert parse_event(dict(BASE)) == CompletionEvent.model_validate(BASE)
    with pytest.raises(ValueError) as info:
        parse_event([BASE])
    assert str(info.value) == "an event must be a JSON object, got list"


# -- limits at their exact boundary --------------------------------------------------------------


def test_the_id_length_limit_is_255_after_normalisation() -> None:
    at_limit = ["x" * 255, " " + "x" * 255 + "\n", "e\u0301" * 255]  # NFC: 255 characters
    for value in at_limit:
        assert len(CompletionEvent.model_validate({**BASE, "person_id": value}).person_id) == 255
    for field in ("person_id", "course_id", "source_instance", "event_id"):
        assert refused(**{field: "x" * 256}) == {field: "must be at most 255 characters"}


FROZEN_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class FrozenClock(datetime):
    @classmethod
    def now(cls, tz: tzinfo | None = None) -> FrozenClock:
        return cls.fromtimestamp(FROZEN_NOW.timestamp(), tz)


@pytest.mark.parametrize(
    ("instant", "accepted"),
    [
        ("2000-01-01T00:00:00Z", True),
        ("2000-01-01T01:00:00+01:00", True),
        ("1999-12-31T23:59:59.999999Z", False),
        ("2000-01-01T00:59:59.999999+01:00", False),
        ("2026-11-21T12:00:00Z", True),  # now + exactly one day
        ("2026-11-21T13:00:00+01:00", True),
        ("2026-11-21T12:00:00.000001Z", False),
        ("2026-11-21T11:00:00.000001-01:00", False),
    ],
)
def test_the_completion_window_is_2000_to_a_day_from_now_inclusive(
    monkeypatch: pytest.MonkeyPatch, instant: str, accepted: bool
) -> None:
    monkeypatch.setattr(event_module, "datetime", FrozenClock)
    if accepted:
        CompletionEvent.model_validate({**BASE, "completed_at": instant})
    else:
        assert refused(completed_at=instant) == {"completed_at": OUTSIDE}


# -- stored ids: golden values -------------------------------------------------------------------

# Completion keys and derived event ids are stored in every ledger record and index. These values
# were computed by the released versions; if a change makes this test fail, it re-keys every
# stored record: either undo it, or ship a migration of the stored keys together with a
# migration note in the README and only then update the values here.
GOLDEN: list[tuple[dict[str, Any], str, str, str]] = [
    (
        BASE,
        "moodle|https://lms.example.nl|42|77",
        "2950623893ba5cd88021",
        "derived-72b9ef1ef042329765ea8e01",
    ),
    (
        {"source": "ilias", "person_id": 57, "course_id": 12, "completed_at": 1795179780},
        "ilias|default|57|12",
        "3a6bf90648593cbb92bc",
        "derived-993660537faa05f49af32a3b",
    ),
    (
        {
            "source": "anewspring",
            "source_instance": "acme|eu",
            "person_id": "a%7Cb",
            "course_id": "c|d",
            "grade": 7,
            "completed_at": "2026-11-20T13:03:00Z",
        },
        "anewspring|acme%7Ceu|a%257Cb|c%7Cd",
        "520d58aa66f4a29aa15a",
        "derived-e301798e302cc3244d2b5c9c",
    ),
    (
        {
            "source": "xapi",
            "source_instance": " https://lrs.example.nl ",
            "person_id": "\u00a0Jose\u0301 ",
            "course_id": "\tcourse-1\n",
            "grade": " voldoende ",
            "completed_at": "2026-06-30T23:59:59.5-04:00",
        },
        "xapi|https://lrs.example.nl|José|course-1",
        "46c733c9352acd751c8e",
        "derived-f3f5e5dcd116fb190a704a02",
    ),
    (
        {**BASE, "source_instance": "default", "grade": 10.0},
        "moodle|default|42|77",
        "e3b9ec08d60572c769f1",
        "derived-32028c90e48497cbd3cdd7f1",
    ),
    (
        {**BASE, "source_instance": "default", "grade": None},
        "moodle|default|42|77",
        "e3b9ec08d60572c769f1",
        "derived-b66b092fc7626fab12f0eb1c",
    ),
    (
        {**BASE, "event_id": " moodle-88123\n"},
        "moodle|https://lms.example.nl|42|77",
        "2950623893ba5cd88021",
        "moodle-88123",
    ),
]


@pytest.mark.parametrize(("data", "text", "key_id", "event_id"), GOLDEN)
@pytest.mark.usefixtures("far_host_zone")
def test_stored_ids_of_representative_inputs_never_change(
    data: dict[str, Any], text: str, key_id: str, event_id: str
) -> None:
    event = CompletionEvent.model_validate(data)
    assert (event.key.text(), event.key.id, event.id) == (text, key_id, event_id)
    assert CompletionKey.from_text(text) == event.key


@pytest.mark.usefixtures("far_host_zone")
def test_the_derived_id_is_of_the_utc_instant_whatever_the_hosts_zone() -> None:
    golden = "derived-72b9ef1ef042329765ea8e01"
    for same_instant in ("2026-11-21T03:03:00+14:00", "2026-11-20T08:03:00-05:00", 1795179780.0):
        assert CompletionEvent.model_validate({**BASE, "completed_at": same_instant}).id == golden


def test_key_texts_are_decoded_whatever_the_percent_case() -> None:
    key = CompletionKey.from_text("moodle|lms|a%7cb%7Cc%25|d")
    assert key.person_id == "a|b|c%"
    for text in ("moodle|lms|42", "moodle|lms|42|77|x"):
        with pytest.raises(ValueError) as info:
            CompletionKey.from_text(text)
        assert str(info.value) == ("a completion key has four parts: source|instance|person|course")
