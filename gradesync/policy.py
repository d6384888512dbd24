"""Pure retry policy: when to try again, and when to give up."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def next_daily_attempt(failed_at: datetime, retry_time: time, tz: ZoneInfo) -> datetime:
    """The first daily pass (``retry_time`` in ``tz``) strictly after a failure.

    The pass itself runs once a day and takes each due record once, so a record is retried at
    most once a day; a failure during the pass is due at the next day's pass.

    Instants are compared, not wall clocks: on the night the clocks go back, 02:15 after the
    change is later than 02:30 before it. A ``retry_time`` the spring change skips is read with
    the offset before the change (02:30 is 03:30 summer time).
    """
    day = failed_at.astimezone(tz).date()
    candidate = datetime.combine(day, retry_time, tzinfo=tz)
    if candidate.timestamp() <= failed_at.timestamp():
        candidate = datetime.combine(day + timedelta(days=1), retry_time, tzinfo=tz)
    return candidate


def retries_exhausted(daily_retries_done: int, max_retries: int) -> bool:
    return daily_retries_done >= max_retries


def transient_backoff(
    retry_number: int,
    base_s: float,
    cap_s: float,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Exponential backoff with jitter, never sooner than the server's ``Retry-After``."""
    ceiling = min(cap_s, base_s * 2.0**retry_number)
    delay = ceiling * (0.5 + 0.5 * (rng or random).random())
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return delay
