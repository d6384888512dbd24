"""A fault-injection point for the reliability suite (tests/faults).

With ``GRADESYNC_FAULT_HOLD_AFTER=<task name>`` a worker stops dead right after that step has
done its Coachview work and before its message is acknowledged, after creating the file named
by ``GRADESYNC_FAULT_MARKER``: the test then kills it with SIGKILL at exactly the worst moment.
Unset (always, outside tests) this is a no-op.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_HOLD_AFTER = os.environ.get("GRADESYNC_FAULT_HOLD_AFTER")
_MARKER = os.environ.get("GRADESYNC_FAULT_MARKER")


def hold_after(task_name: str) -> None:
    if _HOLD_AFTER is None or task_name != _HOLD_AFTER:
        return
    if _MARKER:
        Path(_MARKER).write_text(task_name)
    while True:  # until SIGKILL
        time.sleep(60)
