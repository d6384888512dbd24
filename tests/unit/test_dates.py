"""Where gradesync derives a date from an instant, across a DST change and UTC midnight
(issue 22): Coachview's approval date, the daily retry pass, and the budget's 24-hour window.

Every instant is computed from the real "now" (last year's DST changes, the coming local
midnight), never written down: the tests pass on any date, also under ``faketime -f +365d``.
Europe/Amsterdam leaves CET for CEST at 01:00 UTC on the last Sunday of March and returns at
01:00 UTC on the last Sunday of October.
"""

from __future__ import annotations

import calendar
import itertools
import time as clock
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import fakeredis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradesync.coachview.budget import Budget
from gradesync.completion_time import (
    AGGREGATION_ALL,
    MoodleCompletionStatus,
    MoodleCriterion,
    moodle_completion_instant,
)
from gradesync.event import CompletionEvent
from gradesync.policy import next_daily_attempt

AMS = ZoneInfo("Europe/Amsterdam")
HOUR = timedelta(hours=1)


def last_sunday(year: int, month: int) -> date:
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - calendar.SUNDAY) % 7)


def change(month: int) -> datetime:
    """Last year's DST change in ``month`` (3 or 10): 01:00 UTC of its last Sunday."""
    year = datetime.now(UTC).year - 1
    return datetime.combine(last_sunday(year, month), time(1), tzinfo=UTC)


def completed(at: datetime) -> CompletionEvent:
    return CompletionEvent.model_validate(
        {
            "source": "moodle",
            "source_instance": "default",
            "person_id": "57",
            "course_id": "12",
            "completed_at": at.isoformat(),
        }
    )


def test_the_changes_are_where_the_time_zone_database_has_them() -> None:
    for month, before, after in ((3, 1, 2), (10, 2, 1)):
        at = change(month)
        assert at.date().weekday() == calendar.SUNDAY
        assert (at - HOUR / 60).astimezone(AMS).utcoffset() == timedelta(hours=before)
        assert at.astimezone(AMS).utcoffset() == timedelta(hours=after)


# -- Coachview's approval date: the completion's calendar date in GRADESYNC_TIMEZONE ----------


@pytest.mark.parametrize(
    ("month", "offset", "days_after_utc_date"),
    [
        # Spring: 23:30 UTC on Saturday is 00:30 CET on Sunday (the day of the change).
        (3, -timedelta(minutes=90), 1),
        # The hour that does not exist locally: 00:59 UTC is 01:59 CET, 01:00 UTC is 03:00 CEST.
        (3, -timedelta(minutes=1), 0),
        (3, timedelta(0), 0),
        # CEST: 22:30 UTC on Sunday is 00:30 on Monday.
        (3, timedelta(hours=21, minutes=30), 1),
        (3, timedelta(hours=20, minutes=59), 0),
        # Autumn: 22:00 UTC on Saturday is 00:00 CEST on Sunday; 21:59 UTC is still Saturday.
        (10, -timedelta(hours=3), 1),
        (10, -timedelta(hours=3, minutes=1), 0),
        # The hour lived twice (02:00–02:59 CEST, then CET): the same Sunday either way.
        (10, -timedelta(minutes=30), 0),
        (10, timedelta(minutes=30), 0),
        # CET again: 23:00 UTC on Sunday is 00:00 on Monday.
        (10, timedelta(hours=22), 1),
        (10, timedelta(hours=21, minutes=59), 0),
    ],
)
def test_the_approval_date_is_the_local_date_across_dst(
    month: int, offset: timedelta, days_after_utc_date: int
) -> None:
    at = change(month) + offset
    event = completed(at)
    assert event.approval_date(AMS) == at.date() + timedelta(days=days_after_utc_date)
    assert event.approval_date(ZoneInfo("UTC")) == at.date()


@given(st.integers(-36 * 60, 36 * 60), st.sampled_from([3, 10]))
def test_the_approval_date_is_the_local_wall_clocks_date(minutes: int, month: int) -> None:
    at = change(month) + timedelta(minutes=minutes)
    assert completed(at).approval_date(AMS) == at.astimezone(AMS).date()


def test_a_completion_just_before_utc_midnight_is_the_next_day_in_amsterdam() -> None:
    # New Year's Eve of last year, 23:30 UTC: 00:30 on 1 January in Amsterdam.
    eve = datetime(datetime.now(UTC).year - 1, 12, 31, 23, 30, tzinfo=UTC)
    assert completed(eve).approval_date(AMS) == date(eve.year + 1, 1, 1)
    assert completed(eve).approval_date(ZoneInfo("UTC")) == date(eve.year, 12, 31)
    assert completed(eve + HOUR).approval_date(ZoneInfo("UTC")) == date(eve.year + 1, 1, 1)


def test_moodles_criterion_time_decides_the_date_not_the_events() -> None:
    # The last criterion was met at 00:30 CEST on the autumn Sunday (22:30 UTC on Saturday);
    # Moodle's cron announced it hours later: Coachview gets Sunday, not Saturday's UTC date.
    met = change(10) - timedelta(hours=2, minutes=30)
    event_time = met + timedelta(hours=5)
    status = MoodleCompletionStatus(
        completed=True,
        aggregation=AGGREGATION_ALL,
        completions=[
            MoodleCriterion(complete=True, timecompleted=int((met - HOUR).timestamp())),
            MoodleCriterion(complete=True, timecompleted=int(met.timestamp())),
        ],
    )
    instant = moodle_completion_instant(status, event_time)
    assert instant.source == "moodle_completion_criteria" and instant.at == met
    assert completed(instant.at).approval_date(AMS) == change(10).date()
    assert met.date() == change(10).date() - timedelta(days=1)


# -- the daily retry pass: once a day at GRADESYNC_RETRY_TIME in GRADESYNC_TIMEZONE -----------


def passes(start: datetime, retry_time: time, count: int) -> list[datetime]:
    """The passes a record failing again at each one would be retried at."""
    out = [next_daily_attempt(start, retry_time, AMS)]
    while len(out) < count:
        out.append(next_daily_attempt(out[-1], retry_time, AMS))
    return out


@pytest.mark.parametrize(("month", "hours"), [(3, 23), (10, 25)])
def test_the_daily_pass_keeps_its_local_time_over_a_dst_change(month: int, hours: int) -> None:
    start = change(month) - timedelta(days=3)
    got = passes(start, time(4, 0), 6)
    assert all(p.astimezone(AMS).time() == time(4, 0) for p in got)
    local_days = [p.astimezone(AMS).date() for p in got]
    assert local_days == [local_days[0] + timedelta(days=n) for n in range(6)]  # once a day
    gaps = {b.astimezone(UTC) - a.astimezone(UTC) for a, b in itertools.pairwise(got)}
    assert gaps == {timedelta(hours=24), timedelta(hours=hours)}


@pytest.mark.parametrize(
    ("month", "retry_time"),
    [
        (3, time(2, 30)),  # does not exist on the spring Sunday
        (10, time(2, 30)),  # happens twice on the autumn Sunday
        (3, time(0, 0)),
        (10, time(0, 0)),
        (3, time(23, 59)),
    ],
)
@given(minutes=st.integers(-48 * 60, 48 * 60))
def test_the_next_pass_is_strictly_after_the_failure_and_within_a_day(
    month: int, retry_time: time, minutes: int
) -> None:
    failed = change(month) + timedelta(minutes=minutes)
    due = next_daily_attempt(failed, retry_time, AMS)
    real_gap = due.astimezone(UTC) - failed
    assert timedelta(0) < real_gap <= timedelta(hours=25)
    # Never twice on one local day: the pass after this one is on the next local date.
    following = next_daily_attempt(due, retry_time, AMS)
    assert following.astimezone(AMS).date() == due.astimezone(AMS).date() + timedelta(days=1)


def test_a_failure_in_the_repeated_hour_after_that_days_pass_waits_for_the_next_day() -> None:
    # 02:15 CET, the second time 02:15 happens that night (01:15 UTC): the 02:30 pass already ran
    # at 02:30 CEST (00:30 UTC). Comparing wall clocks would call it due 75 minutes *before* it
    # failed, and the next pass would retry it within the same day.
    failed = change(10) + timedelta(minutes=15)
    assert failed.astimezone(AMS).strftime("%H:%M %Z") == "02:15 CET"
    due = next_daily_attempt(failed, time(2, 30), AMS)
    assert due.astimezone(UTC) > failed
    assert due.astimezone(AMS).date() == failed.date() + timedelta(days=1)


def test_a_failure_at_utc_midnight_is_due_at_the_local_pass_time() -> None:
    # 00:00 UTC is 01:00 (CET) or 02:00 (CEST) in Amsterdam: a 01:30 pass that night is still ahead
    # in winter and already past in summer.
    winter = datetime.combine(change(10).date() + timedelta(days=7), time(0), tzinfo=UTC)
    summer = datetime.combine(change(3).date() + timedelta(days=7), time(0), tzinfo=UTC)
    assert next_daily_attempt(winter, time(1, 30), AMS).astimezone(UTC) == winter + HOUR / 2
    assert next_daily_attempt(summer, time(1, 30), AMS).astimezone(UTC) == summer + timedelta(
        hours=23, minutes=30
    )


# -- the budget's local count: 24 hours from the first request, not a calendar day ------------


def next_midnight(tz: ZoneInfo, real: float) -> float:
    day = datetime.fromtimestamp(real, tz).date() + timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=tz).timestamp()


@pytest.mark.parametrize("tz", [AMS, ZoneInfo("UTC")])
def test_the_budgets_window_is_24_hours_across_midnight(tz: ZoneInfo) -> None:
    """The count is keyed on real seconds, so neither midnight nor a DST change ends it. Its
    clock starts at the real "now" or later: fakeredis expires the hash on the real clock."""
    first = next_midnight(tz, clock.time()) - 60
    now = [first]
    b = Budget(fakeredis.FakeRedis(), reserve=0, clock=lambda: now[0], daily_limit=10)
    b.sending()
    now[0] = first + 120  # a new calendar day: the same window
    b.sending()
    sent = b.sent()
    assert sent is not None and sent["total"] == 2 and sent["started"] == first
    now[0] = first + 86400 - 1
    b.sending()
    assert b.sent() == {
        "total": 3,
        "by_mode": {"other": 3},
        "started": first,
        "resets": first + 86400,
    }
    now[0] = first + 86400  # 24 hours after the first request: a new window
    b.sending()
    sent = b.sent()
    assert sent is not None and sent["total"] == 1 and sent["started"] == now[0]
