from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import fakeredis

from gradesync.event import CompletionEvent
from gradesync.ledger import Ledger, LedgerError
from workers.schedule import SWEEP_GRACE, run_retry_pass, sweep

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
ERR = LedgerError(code="unknown_person", message="x")


def admit(ledger: Ledger, n: int) -> str:
    event = CompletionEvent.model_validate(
        {"source": "ilias", "person_id": str(n), "course_id": "1", "completed_at": T0.isoformat()}
    )
    return ledger.admit(event, T0).record.id


def test_retry_pass_takes_due_records_and_gives_up_exhausted_ones() -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    for rid in (admit(ledger, 1), admit(ledger, 2)):
        ledger.start(rid, T0)

        ledger.unresolved(rid, T0, ERR, max_retries=30, retry_time=time(3), tz=ZoneInfo("UTC"))
    sent: list[str] = []
    result = run_retry_pass(ledger, T0 + timedelta(days=1), 0, sent.append)
    assert (result.requeued, result.given_up) == (0, 2) and sent == []
    assert run_retry_pass(ledger, T0 + timedelta(days=2), 30, sent.append).requeued == 0


def test_retry_pass_requeues_each_due_record_once() -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    rids = [admit(ledger, n) for n in range(5)]
    for rid in rids:
        ledger.start(rid, T0)
        ledger.unresolved(rid, T0, ERR, max_retries=30, retry_time=time(3), tz=ZoneInfo("UTC"))
    sent: list[str] = []
    as_of = T0 + timedelta(days=1)
    assert run_retry_pass(ledger, as_of, 30, sent.append).requeued == 5
    assert run_retry_pass(ledger, as_of, 30, sent.append).requeued == 0
    assert sorted(sent) == sorted(rids)


def test_sweep_resends_unsent_after_grace_and_resumes_deferred_within_room() -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    lost = admit(ledger, 1)  # recorded, never sent
    waiting = [admit(ledger, n) for n in range(2, 6)]
    for rid in waiting:
        ledger.sent(rid)
        ledger.start(rid, T0)
        ledger.defer(rid, T0, T0 + timedelta(minutes=1), ERR)
    sent: list[str] = []
    assert sweep(ledger, T0, sent.append) == 0  # nothing due yet
    later = T0 + SWEEP_GRACE + timedelta(seconds=1)
    assert sweep(ledger, later, sent.append, room=2) == 3
    assert sent[0] == lost and set(sent[1:]) < set(waiting)
    # The first sweep's `send` did not clear the outbox, so `lost` goes again, with the rest.
    assert sweep(ledger, later, sent.append, room=10) == 3
    assert set(sent) == {lost, *waiting}


def test_sweep_resends_a_stalled_run_once_per_stall_period() -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    rid = admit(ledger, 1)
    ledger.sent(rid)
    ledger.start(rid, T0)
    sent: list[str] = []
    stall = timedelta(minutes=70)
    assert sweep(ledger, T0 + timedelta(minutes=69), sent.append, stalled_after=stall) == 0
    later = T0 + timedelta(minutes=71)
    assert sweep(ledger, later, sent.append, stalled_after=stall) == 1
    assert sweep(ledger, later + timedelta(minutes=1), sent.append, stalled_after=stall) == 0
    assert sent == [rid]
