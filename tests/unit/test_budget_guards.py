"""Budget guards a mutation run found untested (issue 22): a stored ``remaining: 0`` is a spent
budget, not a corrupt hash; a worker's very first check consults the shared local count."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest
from structlog.testing import capture_logs

from gradesync.coachview.api import RATE_LIMIT, RATE_REMAINING, RATE_RESET
from gradesync.coachview.budget import (
    EPOCH_THRESHOLD,
    KEY,
    LOCAL_FRESH_S,
    MAX_RESET_AHEAD_S,
    NEAR,
    SENT,
    SHARE_EVERY,
    Budget,
    BudgetExhausted,
    parse_reset,
)


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
    key_reads = 0

    def hgetall(self, name: Any) -> Any:
        if name == SENT:
            self.reads += 1
        if name == KEY:
            self.key_reads += 1
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
    now = [float(int(time.time()))]  # whole seconds: Lua hands the start back as text
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
    assert Budget(r, reserve=0, clock=lambda: now).capacity(1) == 0


def test_an_ignored_header_is_logged_by_name_and_why_never_by_value() -> None:
    now = time.time()
    b = Budget(fakeredis.FakeRedis(), reserve=5, clock=lambda: now)
    with capture_logs() as logged:
        b.observe({RATE_REMAINING: "lots", RATE_RESET: "soon", RATE_LIMIT: "-1"})
    assert [(e["event"], e["header"], e["reason"], e["log_level"]) for e in logged] == [
        ("header_ignored", RATE_REMAINING, "not a count", "warning"),
        ("header_ignored", RATE_RESET, "not a sane reset time", "warning"),
    ]
    with capture_logs() as logged:
        b.observe({RATE_REMAINING: "10", RATE_RESET: "60", RATE_LIMIT: "-1"})
    assert [(e["header"], e["reason"]) for e in logged] == [(RATE_LIMIT, "not a count")]


def test_a_reset_at_the_edges_of_what_is_believed() -> None:
    now = 1_800_000_000.0
    # The threshold itself is seconds from now (and 31 years is no reset); above it, an epoch.
    assert parse_reset(str(EPOCH_THRESHOLD), now) is None
    assert parse_reset(str(EPOCH_THRESHOLD + 1), now) == EPOCH_THRESHOLD + 1
    assert parse_reset(str(MAX_RESET_AHEAD_S), now) == now + MAX_RESET_AHEAD_S
    assert parse_reset(str(MAX_RESET_AHEAD_S + 1), now) is None


def test_a_fresh_response_far_from_the_reserve_spares_the_check_a_redis_read() -> None:
    now = [float(int(time.time()))]  # whole seconds: Lua hands the start back as text
    r = Counting()
    b = Budget(r, reserve=5, clock=lambda: now[0])
    b.observe({RATE_REMAINING: "4000", RATE_RESET: str(int(now[0]) + 3600)})
    before = r.key_reads
    b.check()
    assert r.key_reads == before  # the response a moment ago said plenty is left
    now[0] += LOCAL_FRESH_S  # no longer a moment ago: Redis may know better
    b.check()
    assert r.key_reads == before + 1


def test_far_from_the_reserve_redis_hears_every_25th_response_and_each_new_window() -> None:
    now = time.time()
    reset = int(now) + 3600
    r = fakeredis.FakeRedis()
    b = Budget(r, reserve=5, clock=lambda: now)

    def respond(left: int, reset_at: int = reset) -> int:
        b.observe({RATE_REMAINING: str(left), RATE_RESET: str(reset_at)})
        return int(r.hget(KEY, "remaining") or -1)

    assert respond(4000) == 4000  # the first: a new window
    assert [respond(4000 - n) for n in range(1, SHARE_EVERY)] == [4000] * (SHARE_EVERY - 1)
    assert respond(4000 - SHARE_EVERY) == 4000 - SHARE_EVERY  # the 25th since
    assert respond(3900, reset + 2) == 4000 - SHARE_EVERY  # 2 s later: the same window
    assert respond(4990, reset + 5) == 4990  # a later reset: a new window, told at once


def test_stored_figures_are_dropped_once_per_stretch_of_responses_without_headers() -> None:
    now = time.time()
    r = fakeredis.FakeRedis()
    b = Budget(r, reserve=5, clock=lambda: now)
    r.hset(KEY, mapping={"limit": 5000, "remaining": 4000, "reset_at": now + 3600})
    b.observe({})  # a fresh worker's first response without them drops them too
    assert r.hgetall(KEY) == {}
    # Another worker, still getting headers:
    r.hset(KEY, mapping={"limit": 5000, "remaining": 4000, "reset_at": now + 3600})
    b.observe({})
    assert r.hgetall(KEY) != {}


def test_at_its_reset_instant_the_last_response_no_longer_speaks() -> None:
    now = float(int(time.time()))
    r = fakeredis.FakeRedis()
    b = Budget(r, reserve=5, clock=lambda: now, daily_limit=100, window_s=3600)
    b.observe({RATE_REMAINING: "4000", RATE_RESET: str(int(now))})
    r.hset(SENT, mapping={"started": now - 10, "total": 100})  # the local count: spent
    with pytest.raises(BudgetExhausted):
        b.check()


def test_the_snapshot_status_shows_whole_and_from_partial_hashes() -> None:
    now = float(int(time.time()))
    r = fakeredis.FakeRedis()
    b = Budget(r, reserve=5, clock=lambda: now)
    r.hset(KEY, mapping={"limit": 5000, "remaining": 4990, "reset_at": now + MAX_RESET_AHEAD_S})
    assert b.snapshot() == {
        "limit": 5000,
        "remaining": 4990,
        "used": 10,
        "reserve": 5,
        "reset_at": datetime.fromtimestamp(now + MAX_RESET_AHEAD_S, UTC).isoformat(
            timespec="seconds"
        ),
        "reset_epoch": now + MAX_RESET_AHEAD_S,
    }
    r.delete(KEY)
    r.hset(KEY, mapping={"remaining": 7, "reset_at": now + 60})  # no limit stored
    snap = b.snapshot()
    assert snap is not None and (snap["limit"], snap["remaining"], snap["used"]) == (0, 7, 0)
    r.delete(KEY)
    r.hset(KEY, mapping={"limit": 9, "reset_at": now + 60})  # no remaining stored
    snap = b.snapshot()
    assert snap is not None and (snap["limit"], snap["remaining"], snap["used"]) == (9, 0, 9)
    r.hset(KEY, "reset_at", now)  # the reset is now: the window has ended
    assert b.snapshot() is None
    r.hdel(KEY, "reset_at")
    assert b.snapshot() is None


def test_a_count_with_its_start_but_no_total_is_a_count_of_nothing() -> None:
    now = float(int(time.time()))
    r = fakeredis.FakeRedis()
    r.hset(SENT, mapping={"started": now - 1})
    sent = Budget(r, reserve=5, clock=lambda: now, window_s=3600).sent()
    assert sent is not None and sent["total"] == 0 and sent["by_mode"] == {}
