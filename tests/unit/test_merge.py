"""Events for one completion key before delivery are merged as if delivered in LMS completion-time
order under first-result-wins (issue 25 items 2 and 3): the arrival order never decides, and a
later event without a grade never erases one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gradesync import transitions as t
from gradesync.event import CompletionEvent, body_hash
from gradesync.record import Record
from tests.unit.test_ledger import event

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
INDEX = ("e", "canonical|moodle|x", "r d")


def admit_all(events: list[CompletionEvent], state: str = "queued") -> Record:
    """Admit ``events`` in this order; the record stays ``state`` between them (as a record
    waiting for Coachview does)."""
    change, _ = t.admit(None, "r", events[0], NOW, (), INDEX)
    assert change.record is not None
    rec = change.record.model_copy(update={"state": state})
    for ev in events[1:]:
        change, admission = t.admit(rec, "r", ev, NOW, (), INDEX)
        assert admission.outcome in ("merged", "duplicate")
        rec = (change.record or rec).model_copy(update={"state": state})
    return rec


def test_arrival_order_does_not_decide() -> None:
    later = event(event_id="a", grade="8", completed_at="2025-11-20T10:00:00+01:00")
    earlier = event(event_id="b", grade="5", completed_at="2025-10-01T10:00:00+02:00")
    for order in ([later, earlier], [earlier, later]):
        rec = admit_all(order)
        assert (rec.event.grade, rec.event.completed_at) == ("5", earlier.completed_at)
        assert rec.event.id == "b"


def test_a_later_event_without_a_grade_never_erases_one() -> None:
    """ILIAS: the push with mark ``8,5``, then the poller's row of the same change without a
    mark, a second later."""
    push = event(
        source="ilias", event_id="push-1", grade="8,5", completed_at="2025-11-20T14:03:00+01:00"
    )
    row = event(
        source="ilias", event_id="lp-1", grade=None, completed_at="2025-11-20T14:03:01+01:00"
    )
    for order in ([push, row], [row, push]):
        rec = admit_all(order, "unresolved")
        assert rec.event.grade == "8,5" and rec.event.completed_at == push.completed_at


def test_an_earlier_completion_without_a_grade_takes_the_next_ones_grade() -> None:
    first = event(event_id="a", grade=None, completed_at="2025-10-01T10:00:00+02:00")
    second = event(event_id="b", grade="7", completed_at="2025-10-02T10:00:00+02:00")
    third = event(event_id="c", grade="9", completed_at="2025-10-03T10:00:00+02:00")
    for order in ([third, first, second], [first, third, second], [second, third, first]):
        rec = admit_all(order)
        assert (rec.event.id, rec.event.grade) == ("a", "7")
        assert rec.event.completed_at == first.completed_at


def test_a_grade_fetched_from_the_lms_is_not_taken_by_a_later_event() -> None:
    first = event(event_id="a", grade=None, completed_at="2025-10-01T10:00:00+02:00")
    change, _ = t.admit(None, "r", first, NOW, ("grade",), INDEX)
    assert change.record is not None
    _, fetched = t.enriched(change.record, NOW, "6", None, None, None, None)
    assert fetched is not None
    later = event(event_id="b", grade="9", completed_at="2025-10-02T10:00:00+02:00")
    change, _ = t.admit(fetched, "r", later, NOW, (), INDEX)
    assert change.record is not None and change.record.event.grade == "6"


def test_a_merged_grade_drops_the_need_to_fetch_it() -> None:
    first = event(event_id="a", grade=None, completed_at="2025-10-01T10:00:00+02:00")
    change, _ = t.admit(None, "r", first, NOW, ("grade",), INDEX)
    assert change.record is not None
    later = event(event_id="b", grade="9", completed_at="2025-10-02T10:00:00+02:00")
    change, _ = t.admit(change.record, "r", later, NOW, (), INDEX)
    assert change.record is not None
    assert change.record.event.grade == "9" and change.record.needs == []


def test_equal_instants_prefer_a_grade_then_the_smaller_event_id() -> None:
    at = "2025-11-20T14:03:00+01:00"
    gradeless = event(event_id="a", grade=None, completed_at=at)
    seven = event(event_id="c", grade="7", completed_at=at)
    six = event(event_id="d", grade="6", completed_at="2025-11-20T13:03:00Z")  # same instant
    for order in ([gradeless, six, seven], [six, seven, gradeless], [seven, gradeless, six]):
        rec = admit_all(order)
        assert (rec.event.id, rec.event.grade) == ("c", "7")


def reference(events: list[CompletionEvent]) -> tuple[str, str | None]:
    """The rule as written: sort by completion time (ties: graded first, then event id, then
    body digest); the first one's id; the first grade in that order."""

    def order(e: CompletionEvent) -> tuple[Any, ...]:
        return (e.completed_at.astimezone(UTC), e.grade is None, e.id, body_hash(e))

    ordered = sorted(events, key=order)
    grade = next((e.grade for e in ordered if e.grade is not None), None)
    return ordered[0].id, grade


@st.composite
def event_sets(draw: st.DrawFn) -> list[CompletionEvent]:
    """2-6 events of one key, completion instants from a few (so ties happen), some without a
    grade, each with its own id."""
    base = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    n = draw(st.integers(2, 6))
    ids = draw(st.lists(st.sampled_from("abcdefgh"), min_size=n, max_size=n, unique=True))
    out = []
    for eid in ids:
        hours = draw(st.integers(0, 3))
        grade = draw(st.sampled_from([None, "5", "8", "8,5", "voldoende"]))
        at = (base + timedelta(hours=hours)).isoformat()
        out.append(event(event_id=eid, grade=grade, completed_at=at))
    return out


@settings(max_examples=300, deadline=None)
@given(data=st.data(), events=event_sets(), state=st.sampled_from(["queued", "unresolved"]))
def test_any_arrival_order_gives_what_completion_time_order_gives(
    data: st.DataObject, events: list[CompletionEvent], state: str
) -> None:
    first = admit_all(events, state)
    shuffled = data.draw(st.permutations(events))
    second = admit_all(list(shuffled), state)
    assert first.event == second.event
    assert (first.event.id, first.event.grade) == reference(events)
    assert first.event.completed_at == min(e.completed_at for e in events)
