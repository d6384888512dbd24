"""Test-wide setup. Ports are chosen before anything imports gradesync's settings, so the
test process and every process it starts agree on where Redis and the simulator are."""

from __future__ import annotations

import os

from gradesync.procs import free_port

REDIS_PORT = free_port()
SIM_PORT = free_port()
os.environ.update(
    {
        "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
        "COACHVIEW_BASE_URL": f"http://127.0.0.1:{SIM_PORT}",
        "GRADESYNC_TRANSIENT_BACKOFF_S": "0.1",
        "GRADESYNC_TRANSIENT_BACKOFF_MAX_S": "0.5",
        "GRADESYNC_LOG_LEVEL": "INFO",
        "GRADESYNC_LOG_FORMAT": "json",
        # Small numbers so budget and sweep behaviour shows within seconds.
        "COACHVIEW_BUDGET_RESERVE": "3",
        "GRADESYNC_SWEEP_INTERVAL_S": "1",
    }
)
