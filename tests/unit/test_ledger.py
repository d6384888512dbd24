"""The Redis store: that it applies a transition with its indexes atomically, once, and keeps
what it stores small and loadable. What each transition does is tested without Redis in
test_transitions.py and test_transition_details.py."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import fakeredis
import pytest

from gradesync.event import CompletionEvent
from gradesync.ledger import Ledger
from gradesync.record import LedgerError

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
AMS = ZoneInfo("Europe/Amsterdam")
NOT_FOUND = LedgerError(code="unknown_person", message="no such person")


def event(**overrides: Any) -> CompletionEvent:
    data = {
        "source": "moodle",
        "source_instance": "https://lms.example.nl",
        "event_id": "e1",
        "person_id": "57",
        "course_id": "12",
        "grade": "8.5",
        "completed_at": "2026-11-20T14:03:00+01:00",
    }
    return CompletionEvent.model_validate({**data, **overrides})


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(fakeredis.FakeRedis())


def park(ledger: Ledger, rid: str, now: datetime = T0, max_retries: int = 30) -> str | None:
    return ledger.unresolved(
        rid, now, NOT_FOUND, max_retries=max_retries, retry_time=time(3), tz=AMS
    )


def test_admit_creates_one_queued_record(ledger: Ledger) -> None:
    admission = ledger.admit(event(), T0)
    assert admission.outcome == "created" and admission.enqueue
    assert ledger.counts()["queued"] == 1
    before, now = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    assert ledger.take_unsent(before, now) == [admission.record.id]
    # Taken: a second sweep at the same moment does not send it too; one a grace later does,
    # when the first died before sending.
    assert ledger.take_unsent(before, now) == []
    assert ledger.take_unsent(now, now) == [admission.record.id]
    ledger.sent(admission.record.id, now)
    assert ledger.take_unsent(now + timedelta(days=1), now) == []


def test_same_event_is_a_duplicate_and_same_id_other_body_a_conflict(ledger: Ledger) -> None:
    ledger.admit(event(), T0)
    assert ledger.admit(event(), T0).outcome == "duplicate"
    assert ledger.admit(event(grade="3"), T0).outcome == "conflict"
    assert sum(ledger.counts().values()) == 1


def test_unresolved_is_due_at_the_next_daily_pass(ledger: Ledger) -> None:
    rid = ledger.admit(event(), T0).record.id
    ledger.start(rid, T0)
    assert park(ledger, rid) == "unresolved"
    rec = ledger.get(rid)
    assert rec is not None and rec.next_attempt == datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
    assert ledger.due_ids(datetime(2026, 11, 21, 1, 59, tzinfo=UTC)) == []
    assert ledger.due_ids(datetime(2026, 11, 21, 2, 0, tzinfo=UTC)) == [rid]


def test_requeue_due_takes_a_record_once(ledger: Ledger) -> None:
    rid = ledger.admit(event(), T0).record.id
    ledger.start(rid, T0)
    park(ledger, rid)
    as_of = T0 + timedelta(days=1)
    assert ledger.requeue_due(rid, as_of, as_of, 30) == "requeued"
    assert ledger.requeue_due(rid, as_of, as_of, 30) == "skipped"
    rec = ledger.get(rid)
    assert rec is not None and rec.state == "queued" and rec.daily_retries == 1
    assert rec.clock == as_of


def test_gives_up_when_daily_retries_are_spent(ledger: Ledger) -> None:
    rid = ledger.admit(event(), T0).record.id
    now = T0
    for day in range(1, 4):
        ledger.start(rid, now)
        assert park(ledger, rid, now, max_retries=3) == "unresolved"
        now = T0 + timedelta(days=day)
        assert ledger.requeue_due(rid, now, now, 3) == "requeued"
    ledger.start(rid, now)
    assert park(ledger, rid, now, max_retries=3) == "given_up"
    rec = ledger.get(rid)
    assert rec is not None and rec.last_error == NOT_FOUND and rec.next_attempt is None
    assert ledger.counts()["given_up"] == 1 and ledger.due_ids(now + timedelta(days=9)) == []


def test_steps_outcome_history_and_find(ledger: Ledger) -> None:
    rid = ledger.admit(event(), T0).record.id
    ledger.start(rid, T0)
    after = ledger.step_done(rid, "person", T0)
    assert after is not None and after.state == "in_progress" and after.id == rid
    ledger.step_done(rid, "person", T0)
    note = {"code": "result_kept_existing", "existing": "6.0", "new": "8.5"}
    noted = ledger.step_done(rid, "result", T0, note)
    assert noted is not None and noted.outcome == note
    ledger.step_done(rid, "attendance", T0)
    ledger.fail(rid, T0, LedgerError(code="http_400", message="bad"))
    rec = ledger.get(rid)
    assert rec is not None
    assert ledger.steps(rid) == ["person", "result", "attendance"]
    assert rec.outcome == note and rec.state == "failed"
    history = ledger.history(rid)
    whats = [h["what"] for h in history]
    assert whats == ["received", "started", "person", "person", "result", "attendance", "failed"]
    assert history[4]["note"] == note and history[-1]["error"]["code"] == "http_400"
    assert history[0]["at"].startswith("2026-11-20T14:00:00")

    assert ledger.find("e1") == rec
    assert ledger.find("moodle|https://lms.example.nl|57|12") == rec
    assert ledger.find(rid) == rec
    assert ledger.find("nothing") is None


def test_list_is_newest_first_and_filters_by_state(ledger: Ledger) -> None:
    ids = [
        ledger.admit(event(event_id=f"e{n}", person_id=str(n)), T0 + timedelta(minutes=n)).record.id
        for n in range(3)
    ]
    assert [r.id for r in ledger.newest()] == ids[::-1]
    ledger.start(ids[0], T0 + timedelta(hours=1))
    assert [r.id for r in ledger.newest("in_progress")] == [ids[0]]
    assert [r.id for r in ledger.newest(limit=1)] == [ids[0]]


def test_record_stays_small(ledger: Ledger) -> None:
    rid = ledger.admit(event(), T0).record.id
    ledger.start(rid, T0)
    park(ledger, rid)
    assert len(ledger.r.get(f"gs:rec:{rid}")) < 1024  # type: ignore[arg-type]
