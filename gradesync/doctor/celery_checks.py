"""Celery: a worker answers, beat holds its lock, and the queue is not piling up."""

from __future__ import annotations

from collections.abc import Callable

import redis

from gradesync import keys
from gradesync.doctor.model import Check, fail, ok, warn

AREA = "celery"
# celeryconfig.py's redbeat_lock_key and task_default_queue (tests pin them equal). Not
# imported: celeryconfig refuses to load with an invalid environment, which doctor reports.
BEAT_LOCK = keys.BEAT_LOCK
QUEUE = keys.QUEUE
PING_TIMEOUT_S = 2.0
# Messages waiting before the queue counts as backing up (`gradesync doctor --queue-threshold`).
QUEUE_THRESHOLD = 1000


def ping_workers(redis_url: str, timeout_s: float = PING_TIMEOUT_S) -> list[str]:
    """Names of the workers that answer a broadcast ping on this broker."""
    from celery import Celery  # deferred: only this check needs Celery, and it is slow to load

    app = Celery("gradesync-doctor", broker=redis_url)
    try:
        replies = app.control.ping(timeout=timeout_s) or []
    finally:
        app.close()
    return sorted(name for reply in replies for name in reply)


def check(client: redis.Redis, ping: Callable[[], list[str]], queue_threshold: int) -> list[Check]:
    checks: list[Check] = []
    workers = ping()
    checks.append(
        ok(AREA, "worker", f"{len(workers)} answered: {', '.join(workers)}")
        if workers
        else fail(
            AREA,
            "worker",
            "no worker answered a ping: completions wait in the queue",
            "start one: celery -A workers worker (same REDIS_URL)",
        )
    )
    holder = client.get(BEAT_LOCK)
    checks.append(
        ok(AREA, "beat", f"holds {BEAT_LOCK}")
        if holder is not None
        else fail(
            AREA,
            "beat",
            f"nobody holds {BEAT_LOCK}: no daily retries, no sweep",
            "start exactly one: celery -A workers beat (same REDIS_URL)",
        )
    )
    waiting = keys.queue_depth(client)
    text = f"{waiting} message(s) waiting in {QUEUE!r}"
    checks.append(
        ok(AREA, "queue", text)
        if waiting <= queue_threshold
        else warn(
            AREA,
            "queue",
            f"{text} (more than {queue_threshold}): workers are not keeping up",
            "add workers, or check COACHVIEW_RATE_LIMIT_PER_S and `gradesync status` (budget)",
        )
    )
    return checks
