"""When a worker has stopped taking tasks while still alive.

A worker can answer ``celery inspect ping`` (its control channel works) and still take nothing
from the task queue: seen once in issue 25's trial after Redis was killed, and what a worker
whose queue consumer was cancelled does. Compose's healthcheck then says "healthy", and even an
"unhealthy" is not acted on (``restart:`` only follows exits), so the worker must notice it
itself and exit for its supervisor to start a fresh one.

The sign is unambiguous: messages wait in the queue, yet the worker holds no task (none running,
none prefetched, none in a countdown) and has received none since it last looked. A worker that
consumes takes a waiting message within milliseconds whenever it has a free slot.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple


class Look(NamedTuple):
    """What the worker sees at one moment."""

    at: datetime
    waiting: int  # messages in the queues this worker consumes (every priority list of each)
    holding: int  # tasks this worker holds: running, prefetched or waiting for a countdown
    received: int  # tasks received since the worker started (a counter)


def starved_since(since: datetime | None, previous: Look | None, look: Look) -> datetime | None:
    """Since when messages have waited while this worker took none (``None``: it is consuming,
    or nothing waits). ``since`` is the answer for ``previous``."""
    took = previous is None or look.received != previous.received
    if look.waiting == 0 or look.holding > 0 or took:
        return None
    return since if since is not None else look.at


def stuck(since: datetime | None, now: datetime, after: timedelta) -> bool:
    """The worker has taken nothing for ``after`` while messages waited: it must go."""
    return since is not None and now - since >= after
