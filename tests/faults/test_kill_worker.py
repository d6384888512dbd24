"""kill -9 a worker right after each step's Coachview work, before its ack: a new worker
finishes the completion, and every Coachview field is written exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from gradesync.procs import wait_until
from tests.faults.conftest import Workers
from tests.integration.conftest import Stack, canonical

ALL_ONCE = {"result": 1, "attendance": 1, "passed": 1, "completed": 1, "approved": 1}
STEPS = ["fetch_from_lms", "resolve", "write_participation", "write_request_component"]


@pytest.mark.parametrize("step", STEPS)
def test_kill_9_after_step(clean: Stack, workers: Workers, tmp_path: Path, step: str) -> None:
    clean.seed()
    marker = tmp_path / "held"
    victim = workers.start(GRADESYNC_FAULT_HOLD_AFTER=f"{step}", GRADESYNC_FAULT_MARKER=str(marker))
    rid = clean.enqueue(canonical(event_id=f"kill-{step}"))
    wait_until(marker.exists, timeout=30)
    victim.kill9()
    workers.start()
    record = clean.settle(rid, timeout=60)
    assert record.state == "delivered", record
    assert clean.component(7001, 9001)["writes"] == ALL_ONCE
