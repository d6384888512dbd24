"""A worker that answers `inspect ping` but takes no tasks (issue 25 item 5) exits non-zero, for
its supervisor to start a fresh one; what waited is then delivered, once."""

from __future__ import annotations

import socket
import time

from gradesync import keys
from gradesync.procs import wait_until
from tests.faults.conftest import Workers
from tests.faults.test_faults import ALL_ONCE
from tests.integration.conftest import Stack, canonical
from workers.watchdog import EXIT_CODE


def test_a_worker_that_stopped_consuming_exits_and_nothing_is_lost(
    clean: Stack, workers: Workers
) -> None:
    from workers.app import app

    clean.seed()
    deaf = workers.start(GRADESYNC_WORKER_STARVED_S="3")
    node = f"fault{workers.n}@{socket.gethostname()}"
    wait_until(lambda: app.control.ping(destination=[node], timeout=0.5), timeout=30)
    # The worker stops consuming its queue and keeps its control channel: the state the trial
    # saw after a Redis kill, made on purpose.
    answer = app.control.cancel_consumer(keys.QUEUE, destination=[node], reply=True)
    assert answer and "ok" in answer[0][node], answer
    rid = clean.enqueue(canonical(event_id="deaf-worker"))

    # Compose's old healthcheck would call it healthy:
    assert app.control.ping(destination=[node], timeout=1.0)
    wait_until(lambda: not deaf.alive(), timeout=30, interval=0.2)
    assert deaf.popen.returncode == EXIT_CODE
    assert "worker_not_consuming" in deaf.log()
    waiting = clean.ledger.get(rid)
    assert waiting is not None and waiting.state == "queued"

    workers.start()  # what compose's `restart: unless-stopped` does
    assert clean.settle(rid).state == "delivered"
    assert clean.component(7001, 9001)["writes"] == ALL_ONCE


def test_a_worker_of_another_queue_is_not_taken_for_a_deaf_one(
    clean: Stack, workers: Workers
) -> None:
    """A worker started with ``-Q other`` takes nothing from the pipeline's queue, by design: a
    backlog there says nothing about it (the trial of issue 25 item 5 saw it exit 70 after
    GRADESYNC_WORKER_STARVED_S, and again after every restart, while it consumed its queue)."""
    clean.seed()
    other = workers.start(queues="other", GRADESYNC_WORKER_STARVED_S="2")
    rid = clean.enqueue(canonical(event_id="waits-for-the-pipeline"))
    # The watchdog looks every 2/6 s: this is six of its starved periods, a backlog all along.
    time.sleep(12)
    assert keys.queue_depth(clean.redis) > 0
    assert other.alive(), other.log()[-3000:]
    assert "worker_not_consuming" not in other.log()

    workers.start()
    assert clean.settle(rid).state == "delivered"
    assert clean.component(7001, 9001)["writes"] == ALL_ONCE
