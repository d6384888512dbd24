from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_a_failure_at_the_exact_pass_instant_waits_for_the_next_pass() -> None:
    # The pass at 03:00:00 took this record already: due again that same instant would mean
    # twice in one pass.
    failed = datetime(2026, 11, 21, 3, 0, 0, tzinfo=AMS)
    assert next_daily_attempt(failed, THREE, AMS) == datetime(2026, 11, 22, 3, 0, tzinfo=AMS)
    just_before = failed - timedelta(microseconds=1)
    assert next_daily_attempt(just_before, THREE, AMS) == failed


@pytest.mark.usefixtures("far_host_zone")
def test_the_pass_is_in_the_configured_zone_not_the_hosts() -> None:
    auckland = ZoneInfo("Pacific/Auckland")
    failed = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)  # 03:30 on the 21st in Auckland
    assert next_daily_attempt(failed, THREE, auckland) == datetime(
        2026, 11, 22, 3, 0, tzinfo=auckland
    )
    assert next_daily_attempt(failed, THREE, AMS) == datetime(2026, 11, 21, 3, 0, tzinfo=AMS)


ZONES = ["Europe/Amsterdam", "UTC", "Pacific/Auckland", "America/New_York", "Asia/Kolkata"]


@settings(max_examples=300, deadline=None)
@given(
    failed=st.datetimes(
        min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(ZONES),
)
def test_the_next_attempt_is_the_first_pass_strictly_after_the_failure(
    failed: datetime, zone: str
) -> None:
    tz = ZoneInfo(zone)
    nxt = next_daily_attempt(failed, THREE, tz)
    local = nxt.astimezone(tz)
    assert local.time() == THREE and nxt > failed
    previous_pass = datetime.combine(local.date() - timedelta(days=1), THREE, tzinfo=tz)
    assert previous_pass <= failed


class Fixed(random.Random):
    """A "random" source that always answers ``value``: the jitter's two ends."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def test_backoff_doubles_from_the_base_until_the_cap() -> None:
    ceilings = [transient_backoff(n, 2.0, 60.0, rng=Fixed(1.0)) for n in range(7)]
    assert ceilings == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    floors = [transient_backoff(n, 2.0, 60.0, rng=Fixed(0.0)) for n in range(7)]
    assert floors == [c / 2 for c in ceilings]
    assert transient_backoff(3, 2.0, 60.0, rng=Fixed(0.5)) == 12.0


def test_retry_after_only_raises_the_delay() -> None:
    assert transient_backoff(4, 2.0, 60.0, retry_after_s=5.0, rng=Fixed(1.0)) == 32.0
    assert transient_backoff(4, 2.0, 60.0, retry_after_s=90.0, rng=Fixed(1.0)) == 90.0
    assert transient_backoff(0, 2.0, 60.0, retry_after_s=0.0, rng=Fixed(0.0)) == 1.0
