"""Coachview asks for an hour's wait (429, Retry-After: 3600) — over real processes: the record
waits in the ledger, not in a worker (issue 10.6), and resumes when its time has come."""

from __future__ import annotations

from datetime import datetime, timedelta

from gradesync.coachview.gate import PAUSE
from gradesync.ledger import utcnow
from gradesync.procs import wait_until
from gradesync.record import Record
from tests.faults.conftest import Workers
from tests.faults.test_faults import learners
from tests.integration.conftest import Stack, canonical
from workers.pipeline import enqueue
from workers.schedule import sweep

HOUR = timedelta(hours=1)


def deferred_for_an_hour(stack: Stack, rid: str, asked_at: datetime) -> Record | None:
    record = stack.ledger.get(rid)
    if record is None or record.state != "queued" or record.next_attempt is None:
        return None
    assert record.last_error is not None and record.last_error.code == "rate_limited"
    assert asked_at + HOUR - timedelta(minutes=1) < record.next_attempt < utcnow() + HOUR
    return record


def test_an_hour_long_retry_after_defers_the_record_and_frees_the_worker(
    clean: Stack, workers: Workers
) -> None:
    clean.seed(learners(2))
    # More than one request a second → 429 with Retry-After: 3600; every completion needs several.
    clean.faults(rate_limit_per_s=1, retry_after_s=3600)
    workers.start(concurrency=1)  # one worker process: a sleeping one would stall all work
    asked = utcnow()
    first = clean.enqueue(canonical(person_id="F0", event_id="hour-0"))
    wait_until(lambda: deferred_for_an_hour(clean, first, asked), timeout=20)

    # Coachview's pause still holds for every worker: the next completion does not wait for it
    # inside the worker either, it is deferred to the pause's end at once.
    clean.faults()
    second = clean.enqueue(canonical(person_id="F1", event_id="hour-1"))
    wait_until(lambda: deferred_for_an_hour(clean, second, asked), timeout=20)

    # An hour later (the sweep run as of then) both resume and are delivered.
    clean.redis.delete(PAUSE)
    assert sweep(clean.ledger, utcnow() + HOUR + timedelta(minutes=1), enqueue) == 2
    for rid in (first, second):
        assert clean.settle(rid, timeout=30).state == "delivered"
