"""What each transition writes, field by field: the record's fields, its history entry, and the
side indexes (outbox, deferred, event id). The state table (test_transitions.py) says where a
record goes; these say exactly what it carries there."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gradesync import transitions as t
from gradesync.completion_time import CompletionInstant
from gradesync.merge import standing
from gradesync.record import LedgerError, Record
from tests.unit.test_ledger import event

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=5)
ERR = LedgerError(code="unknown_person", message="no such person")
AMS = ZoneInfo("Europe/Amsterdam")
INDEX = ("e2", "canonical|moodle|x", "r d")


def rec(state: str, **more: Any) -> Record:
    fields: dict[str, Any] = {"event": event(), "first_seen": T0, "updated": T0, **more}
    return Record(id="r", state=state, **fields)


def changed(before: Record, after: Record | None) -> dict[str, Any]:
    """The fields a transition changed, as stored (the id is the key's, never changed)."""
    assert after is not None
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    return {k: new[k] for k in new if new[k] != old[k]}


def expect(before: Record, **fields: Any) -> dict[str, Any]:
    """What ``changed`` reports when exactly ``fields`` are set."""
    return changed(before, before.model_copy(update=fields))


def test_admit_a_new_completion() -> None:
    change, admission = t.admit(None, "r", event(), NOW, ("grade",), INDEX)
    assert admission.outcome == "created" and admission.enqueue
    assert change.record is not None
    mine = standing(event())
    expected = rec("queued", first_seen=NOW, updated=NOW, needs=["grade"])
    assert change.record == expected.model_copy(update={"first_event": mine, "grade_event": mine})
    assert change.history == [{"at": NOW.isoformat(), "what": "received"}]
    assert change.event_index == INDEX and change.outbox


def test_admit_an_earlier_completion_while_open_writes_the_index_not_the_outbox() -> None:
    old = rec("in_progress", needs=["grade"], completed_at_source="moodle_completion_criteria")
    earlier = event(event_id="e2", grade="9", completed_at="2026-11-19T10:00:00+01:00")
    change, admission = t.admit(old, "r", earlier, NOW, (), INDEX)
    assert admission.outcome == "merged" and not admission.enqueue
    assert changed(old, change.record) == expect(
        old,
        **{
            "event": earlier,
            "updated": NOW,
            "needs": [],
            "completed_at_source": "event",
            "first_event": standing(earlier),
            "grade_event": standing(earlier),
        },
    )
    assert change.history == [{"at": NOW.isoformat(), "what": "merged", "event_id": "e2"}]
    assert change.event_index == INDEX and not change.outbox


@pytest.mark.parametrize(
    ("state", "outcome", "extra"),
    [
        ("unresolved", "merged", {}),
        ("failed", "merged", {}),
        ("given_up", "restarted", {"daily_retries": 0}),
        ("shadowed", "merged", {"daily_retries": 0, "attempts": 0, "delivery": None}),
    ],
)
def test_admit_a_new_event_for_a_closed_record_queues_it_again(
    state: str, outcome: str, extra: dict[str, Any]
) -> None:
    old = rec(
        state,
        attempts=3,
        daily_retries=4,
        next_attempt=T0,
        clock=T0,
        delivery="shadow" if state == "shadowed" else "rest",
    )
    earlier = event(event_id="e2", grade="9", completed_at="2026-11-19T10:00:00+01:00")
    change, admission = t.admit(old, "r", earlier, NOW, (), INDEX)
    assert admission.outcome == outcome and admission.enqueue
    mine = standing(earlier)
    expected = {"event": earlier, "state": "queued", "updated": NOW}
    expected |= {"first_event": mine, "grade_event": mine}
    expected |= {"next_attempt": None, "clock": None, **extra}
    assert changed(old, change.record) == expect(old, **expected)
    assert change.history == [{"at": NOW.isoformat(), "what": outcome, "event_id": "e2"}]
    assert change.event_index == INDEX and change.outbox


def test_admit_after_delivery_keeps_the_result_and_notes_both_grades() -> None:
    old = rec("delivered")
    change, admission = t.admit(old, "r", event(event_id="e2", grade="9"), NOW, (), INDEX)
    note = {"code": "later_event_ignored", "kept": "8.5", "new": "9"}
    assert admission.outcome == "after_delivery" and not admission.enqueue
    assert changed(old, change.record) == expect(old, **{"outcome": note, "updated": NOW})
    assert change.history == [
        {"at": NOW.isoformat(), "what": "later_event_ignored", "event_id": "e2", **note}
    ]
    assert change.event_index == INDEX and not change.outbox


def test_a_grade_for_a_completion_delivered_without_one() -> None:
    old = rec(
        "delivered",
        event=event(grade=None),
        needs=["grade"],
        daily_retries=2,
        next_attempt=T0,
        clock=T0,
        outcome={"code": "x"},
    )
    change, admission = t.admit(old, "r", event(event_id="e2", grade="9"), NOW, (), INDEX)
    assert admission.outcome == "grade_added" and admission.enqueue
    assert changed(old, change.record) == expect(
        old,
        **{
            "event": event(grade="9"),  # the first event, with the grade
            "grade_event": standing(event(event_id="e2", grade="9")),
            "state": "queued",
            "updated": NOW,
            "needs": [],
            "next_attempt": None,
            "clock": None,
            "daily_retries": 0,
            "outcome": None,
        },
    )
    assert change.history == [
        {"at": NOW.isoformat(), "what": "grade_added", "event_id": "e2", "grade": "9"}
    ]
    assert change.event_index == INDEX and change.outbox


def test_start_counts_an_attempt_and_keeps_the_rest() -> None:
    old = rec("queued", attempts=1, next_attempt=T0)
    change, started = t.start(old, NOW)
    assert changed(old, started) == expect(
        old,
        **{
            "state": "in_progress",
            "attempts": 2,
            "last_attempt": NOW,
            "updated": NOW,
        },
    )
    assert change.history == [{"at": NOW.isoformat(), "what": "started", "attempt": 2}]
    assert not change.outbox and change.event_index is None


def test_enriched_takes_the_lms_grade_ids_and_instant() -> None:
    old = rec("in_progress", event=event(grade=None), needs=["grade"])
    at = T0 - timedelta(hours=2)
    instant = CompletionInstant(at=at, source="moodle_completion_criteria")
    change, after = t.enriched(old, NOW, "7", "idn-57", "crs-12", "from moodle", instant)
    assert changed(old, after) == expect(
        old,
        **{
            "event": event(grade="7", completed_at=at),
            "needs": [],
            "match_person_id": "idn-57",
            "match_course_id": "crs-12",
            "completed_at_source": "moodle_completion_criteria",
            "updated": NOW,
        },
    )
    moved = {
        "source": "moodle_completion_criteria",
        "at": at.isoformat(),
        "event": event().completed_at.isoformat(),
    }
    assert change.history == [
        {"at": NOW.isoformat(), "what": "lms", "note": "from moodle", "completed_at": moved}
    ]
    # A grade the event carried wins over the LMS's; no instant keeps the event's.
    _, kept = t.enriched(rec("in_progress"), NOW, "7", None, None, None, None)
    assert kept is not None and kept.event == event()
    assert t.enriched(None, NOW, "7", None, None, None, None) == (t.NOTHING, None)


def test_a_noted_step_keeps_its_outcome() -> None:
    old = rec("in_progress")
    note = {"code": "result_kept_existing", "existing": "6.0", "new": "8.5"}
    change, after = t.noted(old, "result", NOW, note)
    assert changed(old, after) == expect(old, **{"outcome": note, "updated": NOW})
    assert change.history == [{"at": NOW.isoformat(), "what": "result", "note": note}]
    assert t.noted(None, "result", NOW, note) == (t.NOTHING, None)


def test_admitting_the_same_event_again_changes_and_sends_nothing() -> None:
    old = rec("unresolved", last_error=ERR)
    change, admission = t.admit(old, "r", event(), NOW, (), INDEX)
    assert change == t.NOTHING
    assert admission.outcome == "duplicate" and admission.record is old and not admission.enqueue


def test_closing_keeps_or_replaces_the_error() -> None:
    assert t.close(rec("delivered"), NOW, "delivered", None) == (t.NOTHING, "delivered")
    old = rec("in_progress", last_error=ERR, next_attempt=T0)
    change, state = t.close(old, NOW, "delivered", None)
    assert state == "delivered"
    assert changed(old, change.record) == expect(
        old,
        **{
            "state": "delivered",
            "updated": NOW,
            "next_attempt": None,
            "last_error": None,  # nothing left to fix; the history keeps it
        },
    )
    assert change.history == [{"at": NOW.isoformat(), "what": "delivered"}]
    other = LedgerError(code="rejected", message="no")
    change, state = t.close(old, NOW, "failed", other)
    assert state == "failed" and change.record is not None
    assert change.record.last_error == other
    assert change.history == [
        {"at": NOW.isoformat(), "what": "failed", "error": other.model_dump()}
    ]


@pytest.mark.usefixtures("far_host_zone")  # the due time is UTC, whatever the host's zone
def test_unresolved_is_due_at_the_next_daily_pass_from_the_pass_clock() -> None:
    old = rec("in_progress", daily_retries=1, clock=T0 + timedelta(days=3))
    change, state = t.unresolved(old, NOW, ERR, 30, time(3), AMS)
    due = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 03:00 Amsterdam after the pass clock
    assert state == "unresolved"
    assert changed(old, change.record) == expect(
        old,
        **{
            "state": "unresolved",
            "updated": NOW,
            "next_attempt": due,
            "last_error": ERR,
        },
    )
    assert change.history == [
        {
            "at": NOW.isoformat(),
            "what": "unresolved",
            "error": ERR.model_dump(),
            "next_attempt": due.isoformat(),
        }
    ]
    spent, state = t.unresolved(rec("in_progress", daily_retries=30), NOW, ERR, 30, time(3), AMS)
    assert state == "given_up" and spent.record is not None
    assert spent.record.last_error == ERR
    closed = rec("delivered")
    assert t.unresolved(closed, NOW, ERR, 30, time(3), AMS) == (t.NOTHING, "delivered")


def test_defer_waits_in_the_ledger() -> None:
    old = rec("in_progress")
    until = NOW + timedelta(hours=2)
    change, _ = t.defer(old, NOW, until, ERR)
    assert changed(old, change.record) == expect(
        old,
        **{
            "state": "queued",
            "updated": NOW,
            "next_attempt": until,
            "last_error": ERR,
        },
    )
    assert change.deferred_until == until and not change.outbox
    assert change.history == [
        {
            "at": NOW.isoformat(),
            "what": "deferred",
            "error": ERR.model_dump(),
            "until": until.isoformat(),
        }
    ]


def test_the_daily_pass_takes_a_due_record_once() -> None:
    old = rec("unresolved", next_attempt=T0, daily_retries=2, last_error=ERR)
    change, outcome = t.requeue_due(old, T0, NOW, 30)
    assert outcome == "requeued" and change.outbox
    assert changed(old, change.record) == expect(
        old,
        **{
            "state": "queued",
            "updated": NOW,
            "next_attempt": None,
            "daily_retries": 3,
            "clock": T0,
        },
    )
    assert change.history == [
        {"at": NOW.isoformat(), "what": "daily_retry", "retry": 3, "as_of": T0.isoformat()}
    ]
    assert t.requeue_due(old, T0 - timedelta(seconds=1), NOW, 30) == (t.NOTHING, "skipped")
    no_time = rec("unresolved", last_error=ERR)
    assert t.requeue_due(no_time, T0, NOW, 30) == (t.NOTHING, "skipped")
    spent, outcome = t.requeue_due(old.model_copy(update={"daily_retries": 30}), T0, NOW, 30)
    assert outcome == "given_up" and spent.record is not None
    assert spent.record.state == "given_up" and spent.record.last_error == ERR
    assert spent.history == [{"at": NOW.isoformat(), "what": "given_up", "error": ERR.model_dump()}]


def test_a_stall_is_a_new_attempt_until_the_limit() -> None:
    old = rec("in_progress", stalls=1)
    change, outcome = t.restall(old, NOW, 3)
    assert outcome == "resend" and change.outbox
    assert changed(old, change.record) == expect(
        old, **{"state": "queued", "updated": NOW, "stalls": 2}
    )
    assert change.history == [{"at": NOW.isoformat(), "what": "stalled", "stalls": 2}]
    # A queued record whose message was lost: sent again the same way, counted alike.
    lost = rec("queued", stalls=1)
    change, outcome = t.restall(lost, NOW, 3)
    assert outcome == "resend" and change.outbox and change.record is not None
    assert changed(lost, change.record) == expect(lost, **{"updated": NOW, "stalls": 2})
    for state in ("delivered", "unresolved", "failed", "given_up", "not_passed"):
        assert t.restall(rec(state), NOW, 3) == (t.NOTHING, "skipped")
    change, outcome = t.restall(old.model_copy(update={"stalls": 3}), NOW, 3)
    assert outcome == "failed" and change.record is not None
    assert change.record.last_error == LedgerError(
        code="stalled", message="run stalled 4 times (no progress); not sent again"
    )


def test_an_operator_retry_and_give_up() -> None:
    old = rec("failed", last_error=ERR, clock=T0, stalls=2, next_attempt=T0)
    change, after = t.retry_now(old, "r", NOW, "ops")
    assert changed(old, after) == expect(
        old,
        **{
            "state": "queued",
            "updated": NOW,
            "next_attempt": None,
            "clock": None,
            "stalls": 0,
        },
    )
    assert change.history == [{"at": NOW.isoformat(), "what": "operator_retry", "by": "ops"}]
    assert change.outbox
    with pytest.raises(LookupError, match="no record r"):
        t.retry_now(None, "r", NOW, "")
    with pytest.raises(ValueError, match=r"^record is queued; only unresolved, failed, given_up, "):
        t.retry_now(rec("queued"), "r", NOW, "")

    change, after = t.give_up_now(rec("unresolved", last_error=ERR), "r", NOW, "left", "ops")
    reason = LedgerError(code="operator_gave_up", message="left")
    assert after.state == "given_up" and after.last_error == reason and after.updated == NOW
    assert change.history == [
        {"at": NOW.isoformat(), "what": "given_up", "error": reason.model_dump(), "by": "ops"}
    ]
    with pytest.raises(LookupError, match="no record r"):
        t.give_up_now(None, "r", NOW, "x", "")
    with pytest.raises(ValueError, match="already delivered"):
        t.give_up_now(rec("delivered"), "r", NOW, "x", "")


def test_the_delivery_mode_is_decided_once() -> None:
    change, mode = t.delivery(rec("queued"), "shadow")
    assert mode == "shadow" and change.record is not None
    assert change.record.delivery == "shadow" and not change.history
    assert t.delivery(rec("queued", delivery="rest"), "shadow") == (t.NOTHING, "rest")
    assert t.delivery(None, "rest") == (t.NOTHING, "rest")


@pytest.mark.parametrize("reason", ["nul\x00byte", "\x1b[31mred", " ", "x" * 501])
def test_a_give_up_reason_is_printable_text(reason: str) -> None:
    with pytest.raises(ValueError, match=r"^the reason "):
        t.give_up_now(rec("unresolved", last_error=ERR), "r", NOW, reason, "")
