"""Budget guards a mutation run found untested (issue 22): a stored ``remaining: 0`` is a spent
budget, not a corrupt hash; a worker's very first check consults the shared local count."""

from __future__ import annotations

import time
from typing import Any

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


class Counting(fakeredis.FakeRedis):
    """Counts the reads of the local count: what a check costs in Redis calls."""

    reads = 0

    def hgetall(self, name: Any) -> Any:
        if name == SENT:
            self.reads += 1
        return super().hgetall(name)


def test_a_worker_near_the_limit_rereads_the_count_others_pushed_up() -> None:
    """Its last view left exactly NEAR above the reserve: other workers may have spent those,
    so the check reads the shared count, which says the budget is spent."""
    now = time.time()
    r = fakeredis.FakeRedis()
    b = Budget(r, reserve=5, clock=lambda: now, daily_limit=1000, window_s=3600)
    r.hset(SENT, mapping={"started": now, "total": 1000 - 5 - NEAR - 1})
    b.sending()  # this worker's own request: its view is now 1000 - 5 - NEAR
    r.hset(SENT, "total", 1000 - 5)  # the others' requests since
    with pytest.raises(BudgetExhausted):
        b.check()


def test_far_from_the_limit_a_check_after_a_request_costs_no_redis_read() -> None:
    now = [time.time()]
    r = Counting()
    b = Budget(r, reserve=5, clock=lambda: now[0], daily_limit=1000, window_s=3600)
    r.hset(SENT, mapping={"started": now[0], "total": 10})  # other workers' requests
    b.check()  # a fresh worker reads the count once...
    assert r.reads == 1
    b.check()  # ...and then trusts what it read
    b.sending()
    b.check()
    assert r.reads == 1
    now[0] += 3600  # the window its view belongs to has just ended: read again
    b.check()
    assert r.reads == 2


def test_capacity_from_a_hash_missing_fields_or_at_its_reset() -> None:
    now = time.time()
    r = fakeredis.FakeRedis()
    b = Budget(r, reserve=5, clock=lambda: now)
    r.hset(KEY, mapping={"limit": 5000, "remaining": 0, "reset_at": now})
    assert b.capacity(5) == (5000 - 5) // 5  # the window ended at its reset: the whole limit
    r.delete(KEY)
    r.hset(KEY, mapping={"limit": 5000, "remaining": 0})  # no reset: as good as ended
    assert b.capacity(1) == 4995
    r.delete(KEY)
    r.hset(KEY, mapping={"remaining": 0, "reset_at": now - 1})  # no limit: nothing known left
    assert b.capacity(1) == 0
