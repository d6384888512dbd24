"""A fault-injection point for the reliability suite (tests/faults).

With ``GRADESYNC_FAULT_HOLD_AFTER=<task name>`` a worker stops dead right after that step has
done its Coachview and ledger work and before it publishes the next step and acknowledges its
message, after creating the file named by ``GRADESYNC_FAULT_MARKER``: the test then kills it
with SIGKILL at exactly the worst moment, or (with ``GRADESYNC_FAULT_RELEASE=1``) breaks
something else and deletes the marker to let the step go on. Unset (always, outside tests) this
is a no-op.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_HOLD_AFTER = os.environ.get("GRADESYNC_FAULT_HOLD_AFTER")
_MARKER = os.environ.get("GRADESYNC_FAULT_MARKER")
_RELEASE = os.environ.get("GRADESYNC_FAULT_RELEASE") == "1"


def hold_after(task_name: str) -> None:
    if _HOLD_AFTER is None or task_name != _HOLD_AFTER:
        return
    marker = Path(_MARKER) if _MARKER else None
    if marker is not None:
        marker.write_text(task_name)
    while not (_RELEASE and marker is not None and not marker.exists()):
        time.sleep(0.05)  # until SIGKILL, or until the test deletes the marker
