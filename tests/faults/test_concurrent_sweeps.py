"""Two sweeps at once (beat queues one every GRADESYNC_SWEEP_INTERVAL_S; behind a backlog they
wait together and two workers take them together) hand each record left in the outbox to the
broker once: found by the trial of issue 25 item 5, where both sent every one of them."""

from __future__ import annotations

from datetime import timedelta

from gradesync.ledger import utcnow
from tests.faults.conftest import Workers
from tests.faults.test_faults import all_delivered_once, learners
from tests.integration.conftest import Stack, canonical

N = 60
# Older than the sweep's grace (workers/schedule.py SWEEP_GRACE, two minutes), younger than the
# stall bound (GRADESYNC_STALL_AFTER_S, five): the sweep sends them as "recorded, never sent".
RECORDED_AGO = timedelta(minutes=3)


def test_two_sweeps_at_once_send_each_unsent_record_once(clean: Stack, workers: Workers) -> None:
    from workers.app import app

    clean.seed(learners(N))
    recorded = utcnow() - RECORDED_AGO
    rids = [
        clean.ledger.admit(canonical(person_id=f"F{i}", event_id=f"unsent-{i}"), recorded).record.id
        for i in range(N)
    ]
    worker = workers.start(concurrency=2)
    for _ in range(2):
        app.send_task("gradesync.sweep")
    all_delivered_once(clean, rids, timeout=90)
    clean.wait_idle()

    started = worker.log().count("Task gradesync.fetch_from_lms[")
    assert started == N, f"{started} chains started for {N} records"
