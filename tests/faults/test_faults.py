"""Redis restarts, a flaky Coachview, a global rate limit and two beats — over real processes."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from typing import Any

from gradesync.ledger import Ledger, utcnow
from gradesync.procs import start_beat, wait_until
from gradesync.record import LedgerError
from tests.conftest import REDIS_PORT
from tests.faults.conftest import Workers
from tests.integration.conftest import Stack, canonical

ALL_ONCE = {"result": 1, "attendance": 1, "passed": 1, "completed": 1, "approved": 1}


def learners(n: int) -> dict[str, Any]:
    return {
        "persons": [{"id": 3000 + i, "externId": f"F{i}"} for i in range(n)],
        "trainings": [{"id": 501, "components": [{"id": 9001, "elearningCourseId": "12"}]}],
        "enrolments": [{"id": 9000 + i, "personId": 3000 + i, "trainingId": 501} for i in range(n)],
    }


def enqueue_many(stack: Stack, n: int, tag: str) -> list[str]:
    return [stack.enqueue(canonical(person_id=f"F{i}", event_id=f"{tag}-{i}")) for i in range(n)]


def all_delivered_once(stack: Stack, rids: list[str], timeout: float = 120) -> None:
    def settled() -> bool:
        return all(
            (r := stack.ledger.get(rid)) is not None and r.state == "delivered" for rid in rids
        )

    try:
        wait_until(settled, timeout=timeout, interval=0.5)
    except TimeoutError:
        stuck = [r for rid in rids if (r := stack.ledger.get(rid)) and r.state != "delivered"]
        detail = [(r.state, stack.ledger.history(r.id)[-3:]) for r in stuck[:3]]
        raise AssertionError(f"{len(stuck)} not delivered: {detail}") from None

    rows = [r for r in stack.state()["enrolmentComponents"] if r["enrolmentId"] >= 9000]
    assert len(rows) == len(rids)
    assert all(r["writes"] == ALL_ONCE for r in rows), [r["writes"] for r in rows]


def test_flaky_coachview_503s(clean: Stack, workers: Workers) -> None:
    clean.seed(learners(20))
    clean.faults(error_rate=0.2, error_status=503)
    workers.start(concurrency=2)
    all_delivered_once(clean, enqueue_many(clean, 20, "flaky"))


def test_429_bursts_with_retry_after_are_honoured(clean: Stack, workers: Workers) -> None:
    clean.seed(learners(10))
    clean.faults(rate_limit_per_s=10, retry_after_s=1)
    workers.start(concurrency=2)
    workers.start(concurrency=2)
    all_delivered_once(clean, enqueue_many(clean, 10, "burst"))

    requests = clean.state()["requests"]
    assert requests["rateLimited"] > 0, "the fault should have produced 429s"
    assert requests["earlyAfter429"] == 0  # nobody sent before Retry-After had elapsed


def test_latency_spikes_past_the_client_timeout(clean: Stack, workers: Workers) -> None:
    clean.seed(learners(6))
    clean.faults(latency_ms=2000)
    workers.start(concurrency=2, COACHVIEW_TIMEOUT_S="1")
    rids = enqueue_many(clean, 6, "slow")
    wait_until(lambda: clean.state()["requests"]["total"] > 10, timeout=30)
    clean.faults()  # the spike passes; the timed-out writes may still have landed
    all_delivered_once(clean, rids)


def test_global_rate_limit_across_four_workers(clean: Stack, workers: Workers) -> None:
    limit = 8
    clean.seed(learners(12))
    for _ in range(4):
        workers.start(concurrency=1, COACHVIEW_RATE_LIMIT_PER_S=str(limit))
    all_delivered_once(clean, enqueue_many(clean, 12, "limited"))
    requests = clean.state()["requests"]
    assert requests["maxPerSecond"] <= limit, requests["maxPerSecond"]
    assert requests["rateLimited"] == 0


def _pass(port: int, as_of_iso: str, queue: Any) -> None:
    from datetime import datetime

    import redis

    from workers.schedule import run_retry_pass

    ledger = Ledger(redis.Redis(port=port))
    sent: list[str] = []
    run_retry_pass(ledger, datetime.fromisoformat(as_of_iso), 30, sent.append)
    queue.put(sent)


def test_two_retry_passes_at_once_take_each_record_once(clean: Stack) -> None:
    ledger, now = clean.ledger, utcnow()
    rids = []
    for i in range(300):
        rid = ledger.admit(canonical(person_id=f"X{i}", event_id=f"two-{i}"), now).record.id
        ledger.start(rid, now)
        ledger.unresolved(
            rid,
            now,
            LedgerError(code="unknown_person", message="-"),
            max_retries=30,
            retry_time=__import__("datetime").time(3),
            tz=__import__("zoneinfo").ZoneInfo("UTC"),
        )
        rids.append(rid)
    as_of = (now + timedelta(days=1)).isoformat()
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    # Spawned children re-import the test modules (new ports): pass the real one.
    procs = [ctx.Process(target=_pass, args=(REDIS_PORT, as_of, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    sent = queue.get(timeout=60) + queue.get(timeout=60)
    for p in procs:
        p.join(30)
    assert sorted(sent) == sorted(rids)  # every due record once, none twice


def test_a_second_beat_waits_for_the_lock(clean: Stack) -> None:
    first = start_beat(clean.workdir, clean.env, "beat-a")
    try:
        lock = clean.redis.get("gs:redbeat:lock")
        second = start_beat(clean.workdir, clean.env, "beat-b")
        try:
            assert clean.redis.get("gs:redbeat:lock") == lock  # still the first one's
            assert first.alive() and second.alive()
        finally:
            second.stop()
    finally:
        first.stop()
        keys = list(clean.redis.scan_iter("gs:redbeat*"))
        if keys:
            clean.redis.delete(*keys)
