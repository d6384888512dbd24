"""Coachview's rate-limit and ``Retry-After`` headers are read strictly: ``inf`` once held the
shared budget shut forever (every later completion failed with ``OverflowError`` and
``gradesync status`` crashed), and a ``Retry-After`` of centuries paused every worker. A value
no Coachview can mean is ignored; one already stored in Redis is not obeyed either."""

from __future__ import annotations

import time

import fakeredis
import httpx
import pytest
import respx

from gradesync.coachview.budget import KEY, MAX_RESET_AHEAD_S, Budget, parse_reset
from gradesync.coachview.client import CoachviewClient
from gradesync.coachview.gate import PAUSE, Gate
from gradesync.errors import Transient
from gradesync.http import MAX_RETRY_AFTER_S, retry_after_seconds

NOW = 1_800_000_000.0
ODD = ["inf", "-inf", "nan", "-1", "1e999", "Infinity", "0x10", "soon", "1_000", " "]
HUGE = "99999999999"


@pytest.mark.parametrize("value", [*ODD, HUGE, str(int(NOW + MAX_RESET_AHEAD_S + 60))])
def test_a_reset_no_coachview_can_mean_is_ignored(value: str) -> None:
    assert parse_reset(value, NOW) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1800000600", 1_800_000_600), ("600", NOW + 600), ("600.5", NOW + 600.5)],
)
def test_a_sane_reset_is_read(value: str, expected: float) -> None:
    assert parse_reset(value, NOW) == expected


def _headers(remaining: str, reset: str, limit: str = "5000") -> dict[str, str]:
    return {
        "X-Rate-Limit-Limit": limit,
        "X-Rate-Limit-Remaining": remaining,
        "X-Rate-Limit-Reset": reset,
    }


@pytest.mark.parametrize(
    "headers",
    [
        *(_headers("4000", odd) for odd in [*ODD, HUGE]),
        *(_headers(odd, str(int(NOW + 600))) for odd in [*ODD, HUGE + "9", "12.5"]),
    ],
)
def test_an_odd_budget_header_is_ignored_and_the_budget_still_works(
    headers: dict[str, str],
) -> None:
    budget = Budget(fakeredis.FakeRedis(), reserve=10, clock=lambda: NOW)
    budget.sending()
    budget.observe(headers)
    # Not believed: the local count of that one request against COACHVIEW_DAILY_LIMIT rules.
    assert budget.snapshot() is None and budget.capacity(1) == 5000 - 10 - 1
    budget.check()
    budget.observe(_headers("5", str(int(NOW + 600))))
    snap = budget.snapshot()
    assert snap is not None and snap["remaining"] == 5 and snap["reset_epoch"] == NOW + 600


@pytest.mark.parametrize(
    "stored",
    [
        {"limit": "5000", "remaining": "4000", "reset_at": "inf"},
        {"limit": "5000", "remaining": "4000", "reset_at": "nan"},
        {"limit": "5000", "remaining": "inf", "reset_at": str(NOW + 600)},
        {"limit": "5000", "remaining": "nan", "reset_at": str(NOW + 600)},
        {"limit": "inf", "remaining": "4000", "reset_at": str(NOW + 600)},
        {"limit": "5000", "remaining": "-5", "reset_at": str(NOW + 600)},
        {"limit": "5000", "remaining": "4000", "reset_at": "99999999999"},
        {"limit": "5000", "remaining": "4000", "reset_at": "garbage"},
    ],
)
def test_a_poisoned_budget_in_redis_is_not_obeyed_and_heals(stored: dict[str, str]) -> None:
    r = fakeredis.FakeRedis()
    for field, value in stored.items():
        r.hset(KEY, field, value)
    budget = Budget(r, reserve=10, clock=lambda: NOW)
    assert budget.snapshot() is None and budget.capacity(1) == 5000 - 10  # the local count's
    budget.check()
    budget.observe(_headers("4", str(int(NOW + 600))))
    snap = budget.snapshot()
    assert snap is not None and snap["remaining"] == 4 and snap["reset_epoch"] == NOW + 600
    assert snap["limit"] == 5000


@pytest.mark.parametrize("value", [*ODD, "-1"])
def test_a_retry_after_no_server_can_mean_is_ignored(value: str) -> None:
    assert retry_after_seconds(value, NOW) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (HUGE, MAX_RETRY_AFTER_S),
        ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER_S),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_a_retry_after_is_clamped_to_a_day(value: str, expected: float) -> None:
    assert retry_after_seconds(value, NOW) == expected


def _pause_left(r: fakeredis.FakeRedis) -> float:
    stored = r.get(PAUSE)
    return 0.0 if stored is None else float(stored) - time.time()


@pytest.mark.parametrize("seconds", [float("inf"), float("nan"), -1.0, 1e999])
def test_the_gate_takes_no_pause_that_is_not_a_number(seconds: float) -> None:
    r = fakeredis.FakeRedis()
    gate = Gate(r, None, max_wait_s=60)
    gate.pause(seconds)
    assert r.get(PAUSE) is None and gate.wait_turn() == 0.0


def test_the_gate_pauses_a_day_at_most() -> None:
    r = fakeredis.FakeRedis()
    Gate(r, None, max_wait_s=60).pause(1e11)
    assert 0 < _pause_left(r) <= MAX_RETRY_AFTER_S + 1


@pytest.mark.parametrize("stored", ["inf", "nan", "garbage", "3000 years ahead"])
def test_a_poisoned_pause_in_redis_is_dropped(stored: str) -> None:
    r = fakeredis.FakeRedis()
    # Read at run time: a test id must not depend on the clock (pytest-xdist's workers compare
    # what they collected).
    far = str(time.time() + 1e11)
    r.set(PAUSE, far if stored == "3000 years ahead" else stored)
    assert Gate(r, None, max_wait_s=60).wait_turn() == 0.0
    assert r.get(PAUSE) is None


@pytest.mark.parametrize(
    ("value", "retry_after"), [("1e999", None), ("inf", None), (HUGE, MAX_RETRY_AFTER_S)]
)
@respx.mock
def test_a_429_with_an_odd_retry_after_pauses_a_day_at_most(
    value: str, retry_after: float | None
) -> None:
    r = fakeredis.FakeRedis()
    client = CoachviewClient("https://cv.test", "id", "s", gate=Gate(r, None, max_wait_s=60))
    respx.post("https://cv.test/auth/connect/token").respond(
        200, json={"access_token": "abc", "expires_in": 3600}
    )
    respx.get("https://cv.test/api/v1/Personen").mock(
        return_value=httpx.Response(429, headers={"Retry-After": value}, text="slow down")
    )
    with pytest.raises(Transient) as info:
        client.find_persons("externId", "57")
    assert info.value.retry_after == retry_after
    assert _pause_left(r) <= MAX_RETRY_AFTER_S + 1


@respx.mock
def test_a_short_429_is_waited_out_and_the_request_sent_again_once() -> None:
    """A step of several look-ups under a burst limit: the look-up that met the 429 goes again
    after the pause, instead of the step losing the others and meeting it again forever."""
    r = fakeredis.FakeRedis()
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # the pause is over when we wake
        slept.append(seconds)
        r.delete(PAUSE)

    gate = Gate(r, None, sleep=sleep, max_wait_s=60)
    client = CoachviewClient("https://cv.test", "id", "secret", gate=gate)
    respx.post("https://cv.test/auth/connect/token").respond(200, json={"access_token": "a"})
    busy = httpx.Response(429, headers={"Retry-After": "2"}, json={})
    route = respx.get("https://cv.test/api/v1/Personen").mock(
        side_effect=[busy, httpx.Response(200, json=[]), busy, busy]
    )
    assert client.find_persons("externId", "57") == []
    assert route.call_count == 2 and slept  # waited for the pause before the second
    with pytest.raises(Transient) as info:  # a second 429 in a row: the step retries later
        client.find_persons("externId", "57")
    assert info.value.code == "rate_limited" and route.call_count == 4


@respx.mock
def test_a_long_429_is_not_waited_out_in_the_worker() -> None:
    gate = Gate(fakeredis.FakeRedis(), None, sleep=lambda _: None, max_wait_s=60)
    client = CoachviewClient("https://cv.test", "id", "secret", gate=gate)
    respx.post("https://cv.test/auth/connect/token").respond(200, json={"access_token": "a"})
    route = respx.get("https://cv.test/api/v1/Personen").respond(
        429, headers={"Retry-After": "3600"}, json={}
    )
    with pytest.raises(Transient):
        client.find_persons("externId", "57")
    assert route.call_count == 1
