from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import fakeredis

from gradesync.event import CompletionEvent
from gradesync.ledger import Ledger
from gradesync.record import LedgerError
from workers.schedule import SWEEP_GRACE, StallCheck, run_retry_pass, sweep

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
        ledger.sent(rid, T0)
        ledger.start(rid, T0)
        ledger.defer(rid, T0, T0 + timedelta(minutes=1), ERR)
    sent: list[str] = []
    assert sweep(ledger, T0, sent.append) == 0  # nothing due yet
    later = T0 + SWEEP_GRACE + timedelta(seconds=1)
    assert sweep(ledger, later, sent.append, room=2) == 3
    assert sent[0] == lost and set(sent[1:]) < set(waiting)
    # `lost` was taken by the first sweep: a second one at once (two sweeps running together)
    # leaves it; the first's `send` did not clear the outbox, so a sweep a grace later sends
    # it again, with the resumed ones (as unsent as it).
    assert sweep(ledger, later, sent.append, room=10) == 2
    assert set(sent) == {lost, *waiting}
    assert sweep(ledger, later + SWEEP_GRACE + timedelta(seconds=1), sent.append) == 5
    assert set(sent[-5:]) == {lost, *waiting}


STALL = timedelta(minutes=5)


def stalls(max_stalls: int = 3, queue_empty: bool = True) -> StallCheck:
    return StallCheck(after=STALL, max_stalls=max_stalls, queue_empty=lambda: queue_empty)


class Broker:
    """Stands in for ``workers.pipeline.enqueue``: records what was sent, clears the outbox."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.sent: list[str] = []
        self.now = T0  # when it sends: the sweep's "now", set by a test that needs it

    def __call__(self, rid: str) -> None:
        self.sent.append(rid)
        self.ledger.sent(rid, self.now)


def running(ledger: Ledger, n: int = 1) -> str:
    rid = admit(ledger, n)
    ledger.sent(rid, T0)
    ledger.start(rid, T0)
    return rid


def test_a_stalled_run_is_resent_minutes_after_its_last_progress_as_a_new_attempt() -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    rid = running(ledger)
    ledger.step_done(rid, "person", T0 + timedelta(minutes=20))  # a long run, still moving
    send = Broker(ledger)
    assert sweep(ledger, T0 + timedelta(minutes=24), send, stalls=stalls()) == 0
    assert sweep(ledger, T0 + timedelta(minutes=26), send, stalls=stalls()) == 1
    assert sweep(ledger, T0 + timedelta(minutes=30), send, stalls=stalls()) == 0
    record = ledger.get(rid)
    assert send.sent == [rid] and record is not None
    assert (record.state, record.stalls) == ("queued", 1)
    restarted = ledger.start(rid, T0 + timedelta(minutes=27))
    assert restarted is not None and restarted.attempts == 2  # the re-send counts


def test_a_queued_record_whose_message_was_lost_is_resent_and_counts_as_a_stall() -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    rid = admit(ledger, 1)
    ledger.sent(rid, T0)  # the broker took it; no step ever started (lost with a Redis restart)
    send = Broker(ledger)
    assert sweep(ledger, T0 + STALL - timedelta(seconds=1), send, stalls=stalls()) == 0
    # Waiting in the queue behind a backlog is not lost.
    assert sweep(ledger, T0 + STALL, send, stalls=stalls(queue_empty=False)) == 0
    assert sweep(ledger, T0 + STALL, send, stalls=stalls()) == 1
    record = ledger.get(rid)
    assert record is not None and (record.state, record.stalls) == ("queued", 1)
    # The resend counts from now: not sent again within the bound...
    assert sweep(ledger, T0 + 2 * STALL - timedelta(seconds=1), send, stalls=stalls()) == 0
    # ...and a record whose message keeps vanishing ends `stalled` like a run that does.
    for n in range(2, 5):
        sweep(ledger, T0 + n * STALL, send, stalls=stalls(max_stalls=3))
    record = ledger.get(rid)
    assert send.sent == [rid] * 3
    assert record is not None and record.state == "failed"
    assert record.last_error is not None and record.last_error.code == "stalled"


def test_a_deferred_record_is_not_lost_and_counts_from_its_send() -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    rid = admit(ledger, 1)
    ledger.sent(rid, T0)
    ledger.start(rid, T0)
    ledger.defer(rid, T0, T0 + timedelta(hours=6), ERR)  # waits for the budget's reset
    send = Broker(ledger)
    assert sweep(ledger, T0 + timedelta(hours=1), send, stalls=stalls()) == 0
    # Taken from the deferred and sent at its time: counted from then, not from its admission.
    due = send.now = T0 + timedelta(hours=6)
    assert sweep(ledger, due, send, stalls=stalls()) == 1
    assert sweep(ledger, due + STALL - timedelta(seconds=1), send, stalls=stalls()) == 0
    assert sweep(ledger, due + STALL, send, stalls=stalls()) == 1  # no step began: lost
    assert send.sent == [rid, rid]


def test_a_record_sent_late_from_the_outbox_counts_from_its_send() -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    rid = admit(ledger, 1)  # recorded at T0; the process died before sending it
    send = Broker(ledger)
    send.now = T0 + timedelta(hours=2)  # the sweep sends it two hours later
    assert sweep(ledger, send.now, send, stalls=stalls()) == 1
    assert sweep(ledger, send.now + STALL - timedelta(seconds=1), send, stalls=stalls()) == 0
    assert send.sent == [rid]


def test_a_run_in_a_retry_countdown_or_waiting_in_the_queue_is_not_stalled() -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    rid = running(ledger)
    ledger.busy_until(rid, T0 + timedelta(minutes=30))  # e.g. Retry-After, waited in-task
    send = Broker(ledger)
    assert sweep(ledger, T0 + timedelta(minutes=34), send, stalls=stalls()) == 0
    # Its next step may be in the broker queue behind a backlog: not stalled while it is there.
    later = T0 + timedelta(minutes=36)
    assert sweep(ledger, later, send, stalls=stalls(queue_empty=False)) == 0
    assert sweep(ledger, later, send, stalls=stalls()) == 1


def test_a_run_that_keeps_stalling_fails_as_stalled_and_is_not_sent_again() -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    rid = running(ledger)
    send = Broker(ledger)
    now = T0
    for _ in range(4):
        now += STALL + timedelta(seconds=1)
        sweep(ledger, now, send, stalls=stalls(max_stalls=3))
        ledger.start(rid, now)  # the re-sent chain starts, then loses its next step again
    record = ledger.get(rid)
    assert send.sent == [rid] * 3
    assert record is not None and record.state == "failed"
    assert record.last_error is not None and record.last_error.code == "stalled"
    assert sweep(ledger, now + timedelta(hours=1), send, stalls=stalls()) == 0
