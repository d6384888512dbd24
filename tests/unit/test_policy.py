from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gradesync.policy import next_daily_attempt, retries_exhausted, transient_backoff

AMS = ZoneInfo("Europe/Amsterdam")
THREE = time(3, 0)


def test_next_attempt_is_the_next_daily_pass() -> None:
    failed = datetime(2026, 11, 20, 14, 0, tzinfo=AMS)
    assert next_daily_attempt(failed, THREE, AMS) == datetime(2026, 11, 21, 3, 0, tzinfo=AMS)


def test_failure_during_the_pass_waits_a_day() -> None:
    failed = datetime(2026, 11, 21, 3, 0, 5, tzinfo=AMS)
    assert next_daily_attempt(failed, THREE, AMS) == datetime(2026, 11, 22, 3, 0, tzinfo=AMS)


def test_failure_before_the_pass_is_taken_by_that_pass() -> None:
    failed = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)  # 02:00 in Amsterdam
    assert next_daily_attempt(failed, THREE, AMS) == datetime(2026, 11, 21, 3, 0, tzinfo=AMS)


def test_next_attempt_is_within_a_day_across_dst() -> None:
    failed = datetime(2026, 3, 28, 3, 30, tzinfo=AMS)  # night before summer time starts
    nxt = next_daily_attempt(failed, THREE, AMS)
    assert nxt.astimezone(AMS).hour == 3 and nxt - failed <= timedelta(days=1)


def test_retries_exhausted_at_the_limit() -> None:
    assert not retries_exhausted(29, 30)
    assert retries_exhausted(30, 30)
    assert retries_exhausted(0, 0)


def test_backoff_grows_caps_and_jitters() -> None:
    rng = random.Random(7)
    delays = [transient_backoff(n, 2.0, 60.0, rng=rng) for n in range(8)]
    assert all(d >= 1.0 for d in delays)
    assert delays[0] <= 2.0 and max(delays) <= 60.0
    assert delays[5] > delays[0]


def test_backoff_never_before_retry_after() -> None:
    assert transient_backoff(0, 1.0, 10.0, retry_after_s=30.0) == 30.0
