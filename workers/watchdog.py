"""A worker that stopped taking tasks exits, for its supervisor to start a fresh one
(``gradesync/consumption.py`` says when). Runs in the worker's main process, beside its
consumer, from ``worker_ready`` on."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from typing import Any

import redis
from celery.signals import task_received, worker_ready
from celery.worker import state

from gradesync import keys, logs
from gradesync.consumption import Look, starved_since, stuck
from gradesync.ledger import utcnow
from workers import resources

log = logs.get("gradesync.watchdog")

# EX_SOFTWARE: not a clean stop, so systemd's Restart=on-failure restarts it too.
EXIT_CODE = 70
# A warm shutdown lets running tasks finish; one that does not end in this time is cut short
# (their messages are unacknowledged and go to another worker: every step is idempotent).
SHUTDOWN_GRACE_S = 90.0

_received = 0


@task_received.connect
def _count(**_: Any) -> None:
    global _received
    _received += 1


def look(queues: tuple[str, ...]) -> Look:
    r = resources.ledger().r
    return Look(
        at=utcnow(),
        waiting=sum(keys.queue_depth(r, queue) for queue in queues),
        holding=len(state.reserved_requests),
        received=_received,
    )


def watch(queues: tuple[str, ...], after: timedelta, every_s: float) -> None:
    since, previous = None, None
    while True:
        time.sleep(every_s)
        try:
            current = look(queues)
        except redis.RedisError:  # a Redis outage is the broker give-up's to handle
            since, previous = None, None
            continue
        since, previous = starved_since(since, previous, current), current
        if stuck(since, current.at, after):
            break
    log.error(
        "worker_not_consuming",
        waiting=current.waiting,
        seconds=round((current.at - since).total_seconds()) if since else None,
        detail="messages wait in the queue and this worker takes none: exiting for its "
        "supervisor to start a fresh one",
    )
    state.should_stop = EXIT_CODE  # the consumer's loop turns this into a warm shutdown
    time.sleep(SHUTDOWN_GRACE_S)
    os._exit(EXIT_CODE)  # the consumer's loop itself is stuck


@worker_ready.connect
def _start(sender: Any, **_: Any) -> None:
    # The queues this worker was started to consume (``-Q``; the pipeline's by default), read
    # now: a consumer cancelled later is what the watchdog looks for, so the current list will
    # not do. Another queue's backlog is no sign: a worker with ``-Q other`` takes none of it.
    queues = tuple(sender.app.amqp.queues.consume_from)
    after = timedelta(seconds=resources.settings().worker_starved_s)
    every_s = min(10.0, after.total_seconds() / 6)
    args = (queues, after, every_s)
    threading.Thread(target=watch, args=args, name="watchdog", daemon=True).start()
