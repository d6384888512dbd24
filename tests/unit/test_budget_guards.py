"""Budget guards a mutation run found untested (issue 22): a stored ``remaining: 0`` is a spent
budget, not a corrupt hash; a worker's very first check consults the shared local count."""

from __future__ import annotations

import time

import fakeredis
import pytest

from gradesync.coachview.api import RATE_LIMIT, RATE_REMAINING, RATE_RESET
from gradesync.coachview.budget import KEY, NEAR, SENT, Budget, BudgetExhausted


def test_a_stored_remaining_of_zero_is_a_spent_budget() -> None:
    # The real clock beside fakeredis's: the reset must lie ahead of both.
    now = time.time()
    r = fakeredis.FakeRedis()
    r.hset(KEY, mapping={"limit": 5000, "remaining": 0, "reset_at": now + 3600})
    b = Budget(r, reserve=0, clock=lambda: now)
    snap = b.snapshot()
    assert snap is not None and snap["remaining"] == 0 and snap["used"] == 5000
    with pytest.raises(BudgetExhausted) as info:
        b.check()
    assert info.value.resume_at == pytest.approx(now + 3600)
    assert b.capacity(1) == 0


def test_a_fresh_workers_first_check_sees_what_other_workers_sent() -> None:
    now = time.time()
    r = fakeredis.FakeRedis()
    r.hset(SENT, mapping={"started": now - 60, "total": 40, "mode:other": 40})
    fresh = Budget(r, reserve=5, clock=lambda: now, daily_limit=40, window_s=3600)
    with pytest.raises(BudgetExhausted) as info:
        fresh.check()
    assert info.value.resume_at == pytest.approx(now - 60 + 3600)


def test_a_response_just_at_the_edge_of_the_near_zone_does_not_skip_redis() -> None:
    """Within NEAR of the reserve every check asks Redis, where another worker may have seen the
    budget run out since this process's last response."""
    now = time.time()
    r = fakeredis.FakeRedis()
    b = Budget(r, reserve=5, clock=lambda: now)
    b.observe({RATE_REMAINING: str(5 + NEAR), RATE_RESET: str(int(now) + 3600), RATE_LIMIT: "5000"})
    r.hset(KEY, "remaining", 0)  # another worker's response since
    with pytest.raises(BudgetExhausted):
        b.check()


def test_a_spent_budget_says_when_it_resumes_in_utc() -> None:
    spent = BudgetExhausted(1_800_000_000.4)
    assert spent.message == (
        "Coachview's daily request budget is spent; resumes at 2027-01-15T08:00:00+00:00"
    )
    assert spent.code == "budget_exhausted" and spent.resume_at == 1_800_000_000.4
