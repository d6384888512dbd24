"""A Redis restart while completions are in flight (issue 15.10): the next step's publish rides
it out, and a run whose next step was lost anyway is resumed by the sweep within minutes."""

from __future__ import annotations

import time
from pathlib import Path

from gradesync.procs import start_beat, start_redis, wait_until
from tests.conftest import REDIS_PORT
from tests.faults.conftest import Workers
from tests.faults.test_faults import ALL_ONCE, all_delivered_once, enqueue_many, learners
from tests.integration.conftest import Stack, canonical

# How long Redis is away: a restart of ordinary length (stop, AOF rewrite, start, load).
DOWNTIME_S = 8.0
# A message lost in the outage is not redelivered within the test (the fault suite's workers
# otherwise use a 3 s visibility timeout): only riding out the restart can carry a run on.
PRODUCTION_VISIBILITY_S = "3600"
# GRADESYNC_STALL_AFTER_S for the lost-step test (the default is 300).
STALL_AFTER_S = 3


def test_redis_restart_with_completions_in_flight(clean: Stack, workers: Workers) -> None:
    clean.seed(learners(20))
    clean.faults(latency_ms=50)  # keep work in flight while Redis goes away
    stall = {"GRADESYNC_STALL_AFTER_S": str(STALL_AFTER_S)}
    workers.start(2, GRADESYNC_VISIBILITY_TIMEOUT_S=PRODUCTION_VISIBILITY_S, **stall)
    rids = enqueue_many(clean, 20, "restart")
    wait_until(lambda: clean.ledger.counts()["delivered"] >= 3, timeout=30)
    clean.procs["redis"].stop()  # SIGTERM: Redis writes its AOF and exits
    time.sleep(DOWNTIME_S)  # the outage itself, not a wait for a condition
    clean.procs["redis"] = start_redis(REDIS_PORT, clean.workdir, clean.env)
    clean.faults()
    # Runs go on by themselves, their steps' ledger writes and publishes having waited for Redis
    # (workers/resources.py, celeryconfig.py). A message a worker was taking as Redis stopped
    # (kombu's take and its filing as unacknowledged are two commands) is gone: beat's sweep
    # sends that record again, as in production (on a loaded machine it happens).
    beat = start_beat(clean.workdir, {**clean.env, **stall}, "beat-restart")
    try:
        all_delivered_once(clean, rids, timeout=90)
    finally:
        beat.stop()


def test_a_record_whose_first_message_was_lost_is_sent_again_by_the_sweep(
    clean: Stack, workers: Workers
) -> None:
    from workers.app import app

    clean.seed()
    rid = clean.enqueue(canonical(event_id="first-message-lost"))
    app.control.purge()  # the message is gone before any worker took it: the record is queued
    stall = {"GRADESYNC_STALL_AFTER_S": str(STALL_AFTER_S)}
    workers.start(GRADESYNC_STALL_AFTER_S=str(STALL_AFTER_S))
    beat = start_beat(clean.workdir, {**clean.env, **stall}, "beat-lost")
    try:
        record = clean.settle(rid, timeout=30)
    finally:
        beat.stop()
    assert record.state == "delivered", record
    assert record.stalls == 1
    assert "stalled" in [h["what"] for h in clean.ledger.history(rid)]
    assert clean.component(7001, 9001)["writes"] == ALL_ONCE


def test_a_step_finished_while_redis_is_down_still_hands_on_to_the_next(
    clean: Stack, workers: Workers, tmp_path: Path
) -> None:
    clean.seed()
    marker = tmp_path / "held"
    workers.start(
        GRADESYNC_FAULT_HOLD_AFTER="resolve",
        GRADESYNC_FAULT_MARKER=str(marker),
        GRADESYNC_FAULT_RELEASE="1",
        GRADESYNC_VISIBILITY_TIMEOUT_S=PRODUCTION_VISIBILITY_S,
    )
    rid = clean.enqueue(canonical(event_id="publish-during-restart"))
    wait_until(marker.exists, timeout=30)
    clean.procs["redis"].stop()
    marker.unlink()  # the step returns now: its chain publishes the next step into the outage
    time.sleep(DOWNTIME_S)  # the outage itself, not a wait for a condition
    clean.procs["redis"] = start_redis(REDIS_PORT, clean.workdir, clean.env)
    # No sweep runs: only the publish's own retries can carry the run on.
    assert clean.settle(rid, timeout=30).state == "delivered"


def test_a_run_whose_next_step_was_lost_is_resumed_by_the_sweep(
    clean: Stack, workers: Workers, tmp_path: Path
) -> None:
    clean.seed()
    marker = tmp_path / "held"
    victim = workers.start(GRADESYNC_FAULT_HOLD_AFTER="resolve", GRADESYNC_FAULT_MARKER=str(marker))
    rid = clean.enqueue(canonical(event_id="lost-step"))
    wait_until(marker.exists, timeout=30)
    victim.kill9()
    # The step's message dies with the worker and is not redelivered: the run is in_progress
    # with no message anywhere, as when the next step's publish was lost with Redis.
    clean.redis.delete("unacked", "unacked_index")
    workers.start(GRADESYNC_STALL_AFTER_S=str(STALL_AFTER_S))
    beat_env = {**clean.env, "GRADESYNC_STALL_AFTER_S": str(STALL_AFTER_S)}
    beat = start_beat(clean.workdir, beat_env, "beat-stall")
    try:
        started = time.monotonic()
        record = clean.settle(rid, timeout=30)
        resumed_after = time.monotonic() - started
    finally:
        beat.stop()
    assert record.state == "delivered", record
    assert (record.attempts, record.stalls) == (2, 1)  # the re-send counted as an attempt
    assert resumed_after < STALL_AFTER_S + 10  # the bound, a sweep interval (1 s) and the run
    assert clean.component(7001, 9001)["writes"] == ALL_ONCE
