"""The budget's local count: what gradesync sent in the window, when Coachview sends no
``X-Rate-Limit-*`` headers (issue 12)."""

from __future__ import annotations

import fakeredis
import pytest
from pydantic import ValidationError

from gradesync.coachview.budget import KEY, SENT, Budget, BudgetExhausted, spending_for
from gradesync.settings import Settings, describe_problems

NO_HEADERS: dict[str, str] = {}


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def budget(r: fakeredis.FakeRedis, clock: Clock, limit: int = 40, reserve: int = 5) -> Budget:
    return Budget(r, reserve=reserve, clock=clock, daily_limit=limit, window_s=3600)


def send(b: Budget, n: int) -> None:
    """``n`` requests as the client makes them: check, count, then the response."""
    for _ in range(n):
        b.check()
        b.sending()
        b.observe(NO_HEADERS)


def test_without_headers_the_local_count_stops_at_the_limit_until_the_window_ends() -> None:
    clock, r = Clock(), fakeredis.FakeRedis()
    b = budget(r, clock)
    send(b, 35)  # 40 minus the reserve of 5
    with pytest.raises(BudgetExhausted) as info:
        b.check()
    assert info.value.resume_at == clock.now + 3600
    assert b.capacity(2) == 0
    clock.now += 3600  # the window has ended
    b.check()
    assert b.capacity(2) == 17
    send(b, 1)
    sent = b.sent()
    assert sent is not None and sent["total"] == 1 and sent["started"] == clock.now


def test_workers_share_one_count() -> None:
    clock, r = Clock(), fakeredis.FakeRedis()
    first, second = budget(r, clock), budget(r, clock)
    send(first, 20)
    send(second, 15)
    with pytest.raises(BudgetExhausted):
        first.check()
    with pytest.raises(BudgetExhausted):
        second.check()


def test_every_request_is_counted_at_once() -> None:
    clock, r = Clock(), fakeredis.FakeRedis()
    b = budget(r, clock, limit=5000, reserve=25)
    send(b, 3)  # far from the limit too: `gradesync status` shows the exact figure
    assert int(r.hget(SENT, "total") or 0) == 3


def test_headers_win_over_the_local_count() -> None:
    clock, r = Clock(), fakeredis.FakeRedis()
    b = budget(r, clock)
    send(b, 35)
    coachview = {
        "X-Rate-Limit-Limit": "5000",
        "X-Rate-Limit-Remaining": "4000",
        "X-Rate-Limit-Reset": str(int(clock.now + 600)),
    }
    b.sending()
    b.observe(coachview)
    b.check()  # Coachview says 4,000 are left: that is what counts
    assert b.capacity(1) == 4000 - 5
    sent = b.sent()
    assert sent is not None and sent["total"] == 36  # still counted, for `gradesync status`


def test_requests_are_counted_per_delivery_mode() -> None:
    clock, r = Clock(), fakeredis.FakeRedis()
    b = budget(r, clock)
    with spending_for("rest"):
        send(b, 3)
    with spending_for("resultlink"):
        send(b, 1)
    send(b, 2)  # outside a pipeline step: doctor, diagnose
    sent = b.sent()
    assert sent is not None
    assert sent["by_mode"] == {"rest": 3, "resultlink": 1, "other": 2} and sent["total"] == 6


@pytest.mark.parametrize(
    "stored",
    [
        {"started": "not a time", "total": "3"},
        {"started": "inf", "total": "3"},
        {"started": str(Clock.now + 10 * 86400), "total": "3"},
        {"total": "1000000"},
    ],
)
def test_a_poisoned_count_is_not_obeyed_and_heals(stored: dict[str, str]) -> None:
    clock, r = Clock(), fakeredis.FakeRedis()
    for field, value in stored.items():
        r.hset(SENT, field, value)
    b = budget(r, clock)
    assert b.sent() is None
    b.check()
    send(b, 1)
    sent = b.sent()
    assert sent is not None and sent["total"] == 1


def test_a_reserve_that_takes_the_whole_daily_limit_is_refused_naming_both() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(COACHVIEW_BUDGET_RESERVE=6000)
    text = describe_problems(info.value)
    assert "COACHVIEW_DAILY_LIMIT: must be more than COACHVIEW_BUDGET_RESERVE (6000)" in text


def test_figures_from_earlier_headers_stop_counting_once_responses_come_without_them() -> None:
    """A proxy that starts dropping the headers: the stored 'remaining' must not keep winning
    over the local count (found by a hostile trial: 44 sent under a limit of 20)."""
    clock, r = Clock(), fakeredis.FakeRedis()
    b = budget(r, clock, limit=20, reserve=5)
    b.sending()
    b.observe(
        {
            "X-Rate-Limit-Limit": "5000",
            "X-Rate-Limit-Remaining": "4893",
            "X-Rate-Limit-Reset": str(int(clock.now + 86_000)),
        }
    )
    assert b.snapshot() is not None
    send(b, 14)  # 15 in all: the limit less the reserve
    assert b.snapshot() is None
    with pytest.raises(BudgetExhausted):
        b.check()


@pytest.mark.parametrize("now", [1_000_000_000.0, 1_800_000_000.0, 4_000_000_000.0])
def test_keys_expire_relative_to_the_budget_clock_not_the_redis_servers(now: float) -> None:
    """The worker's clock decides the window: an EXPIREAT on its timestamp would drop the
    counts at once when Redis's clock is ahead (a test's fixed date, or a skewed host)."""
    clock, r = Clock(), fakeredis.FakeRedis()
    clock.now = now
    b = budget(r, clock)
    b.check()
    b.sending()
    b.observe(
        {"X-Rate-Limit-Limit": "40", "X-Rate-Limit-Remaining": "39", "X-Rate-Limit-Reset": "600"}
    )
    assert 3600 < r.ttl(SENT) <= 3660
    assert 600 + 86400 - 1 <= r.ttl(KEY) <= 600 + 86400
    sent = b.sent()
    assert sent is not None and sent["total"] == 1
