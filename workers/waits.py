"""How long a step may wait inside a worker; anything longer waits in the ledger.

With the Redis broker a message is unacknowledged from the moment a worker takes it, and Redis
hands it to another worker once the visibility timeout has passed (Celery's "Using Redis →
Caveats"). A retry countdown is such a message, held by the worker until its time: the
countdown plus the step's own run must end well inside the visibility timeout, or a second
chain starts. So an in-task wait is at most a minute and at most half the visibility timeout;
a longer one (a ``Retry-After`` of hours, the daily budget's reset) becomes ``Ledger.defer``:
the record goes back to ``queued`` with ``next_attempt``, the worker is free at once, and the
sweep resumes the record when its time has come.
"""

from __future__ import annotations

INLINE_WAIT_MAX_S = 60.0


def max_inline_wait(visibility_timeout_s: float) -> float:
    """The longest a step may wait inside a worker (a countdown, or the gate's pause)."""
    return min(INLINE_WAIT_MAX_S, visibility_timeout_s / 2)


def countdown(delay_s: float, visibility_timeout_s: float) -> float | None:
    """The countdown for an in-task retry after ``delay_s``; ``None``: defer to the ledger."""
    if delay_s > max_inline_wait(visibility_timeout_s):
        return None
    assert delay_s < visibility_timeout_s, "a countdown past the visibility timeout duplicates"
    return delay_s
