"""A worker that answers `inspect ping` but takes no tasks (issue 25 item 5) exits non-zero, for
its supervisor to start a fresh one; what waited is then delivered, once."""

from __future__ import annotations

import socket

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
