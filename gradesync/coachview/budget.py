"""Coachview's daily request budget (5,000 per 24 h per client), shared by all workers.

Every response's ``X-Rate-Limit-*`` headers update one Redis hash; before each request the
client asks :meth:`Budget.check`, which refuses once only the reserve is left, until the reset.

Every REST response is also counted, at once, in a second hash: what this installation sent in
the current window (24 h from the first request after the last window ended), in total and per
delivery mode. When Coachview sends no rate-limit headers, that count against
COACHVIEW_DAILY_LIMIT is the budget; when it does, the headers win. The count also gives
``gradesync status`` its requests per completion.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import redis

from gradesync import keys, logs
from gradesync.coachview import api
from gradesync.errors import RemoteError

KEY = keys.BUDGET
SENT = f"{keys.BUDGET}:sent"  # the local count: started, total, mode:<delivery mode>
DAILY_LIMIT = 5000
WINDOW_S = 86400.0
# Within this many requests of the reserve, every response and check goes through Redis;
# further away a process trusts its own last response for LOCAL_FRESH_S seconds.
NEAR = 200
LOCAL_FRESH_S = 5.0
SHARE_EVERY = 25

# Coachview does not document whether X-Rate-Limit-Reset is an epoch, a delta or a date:
# numbers above this are read as an epoch, smaller ones as seconds from now.
EPOCH_THRESHOLD = 1_000_000_000
# Coachview's window is 24 h: a reset further ahead than two days is not one.
MAX_RESET_AHEAD_S = 2 * 86400
_NUMBER = re.compile(r"\d{1,12}(\.\d{1,6})?")
_COUNT = re.compile(r"\d{1,9}")
log = logs.get("gradesync.budget")

# Keep the lowest "remaining" seen within a window (responses arrive out of order across
# workers); a later reset time starts a new window, and so does a stored value that is not a
# sane number (written by an older version), rather than keep the hash poisoned.
# ARGV: limit, remaining, reset_at, the latest sane reset_at, now. Expiry is relative to the
# caller's clock (EXPIRE, not EXPIREAT): the worker's clock and the Redis server's may differ,
# and the window is the worker's.
_OBSERVE = """
local function sane(x, most) return x ~= nil and x == x and x >= 0 and x <= most end
local reset_old = tonumber(redis.call('HGET', KEYS[1], 'reset_at') or '0')
local rem_old = tonumber(redis.call('HGET', KEYS[1], 'remaining') or ARGV[2])
local reset_new = tonumber(ARGV[3])
local remaining = tonumber(ARGV[2])
local poisoned = not sane(reset_old, tonumber(ARGV[4])) or not sane(rem_old, 1e9)
if poisoned or reset_new > reset_old + 2 then
  redis.call('HSET', KEYS[1], 'limit', ARGV[1], 'remaining', ARGV[2], 'reset_at', ARGV[3])
else
  if remaining < rem_old then redis.call('HSET', KEYS[1], 'remaining', ARGV[2]) end
  redis.call('HSET', KEYS[1], 'limit', ARGV[1])
end
redis.call('EXPIRE', KEYS[1], math.max(1, math.floor(reset_new - tonumber(ARGV[5])) + 86400))
return 1
"""


# Counts one request sent, first starting a new window if the stored one has ended (or is not a
# sane number: an older version's or a hand edit's). KEYS: the count. ARGV: now, window seconds,
# the delivery mode. Returns {total, started}. The expiry is relative, as in _OBSERVE.
_ADD_SENT = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local stored = redis.call('HMGET', KEYS[1], 'started', 'total')
local started, total = tonumber(stored[1] or ''), tonumber(stored[2] or '0')
if started == nil or started ~= started or started + window <= now or started > now + window
   or total == nil or total ~= total then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'started', ARGV[1])
  redis.call('EXPIRE', KEYS[1], math.ceil(window) + 60)
  started = now
end
redis.call('HINCRBY', KEYS[1], 'mode:' .. ARGV[3], 1)
total = redis.call('HINCRBY', KEYS[1], 'total', 1)
return {tostring(total), tostring(started)}
"""

# Which delivery mode the requests sent now are for (set around each pipeline step); requests
# outside a step (doctor, diagnose) count as "other".
_spending_for: ContextVar[str] = ContextVar("gradesync_budget_mode", default="other")


@contextmanager
def spending_for(mode: str) -> Iterator[None]:
    token = _spending_for.set(mode)
    try:
        yield
    finally:
        _spending_for.reset(token)


class BudgetExhausted(RemoteError):
    """The day's budget is spent: wait for the reset instead of sending."""

    code = "budget_exhausted"

    def __init__(self, resume_at: float) -> None:
        when = datetime.fromtimestamp(resume_at, UTC).isoformat(timespec="seconds")
        super().__init__(f"Coachview's daily request budget is spent; resumes at {when}")
        self.resume_at = resume_at


def parse_reset(value: str | None, now: float) -> float | None:
    """The reset as an epoch, or ``None`` for a value no Coachview can mean: not a finite
    non-negative number or date, or more than :data:`MAX_RESET_AHEAD_S` ahead (such a value,
    kept, would hold the budget shut, or the Redis hash, forever)."""
    if not value:
        return None
    text = value.strip()
    reset: float | None
    if _NUMBER.fullmatch(text):
        number = float(text)
        reset = number if number > EPOCH_THRESHOLD else now + number
    else:
        reset = _date(text)
    if reset is None or not math.isfinite(reset) or reset > now + MAX_RESET_AHEAD_S:
        log.warning("header_ignored", header=api.RATE_RESET, reason="not a sane reset time")
        return None
    return reset


def _date(text: str) -> float | None:
    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, OverflowError):
        try:
            return datetime.fromisoformat(text).timestamp()
        except (ValueError, OverflowError):
            return None


def parse_count(value: str | None, header: str) -> int | None:
    """A request count (``X-Rate-Limit-Limit``/``-Remaining``): a non-negative integer."""
    if value is None:
        return None
    text = value.strip()
    if not _COUNT.fullmatch(text):
        log.warning("header_ignored", header=header, reason="not a count")
        return None
    return int(text)


def _stored(raw: Mapping[Any, Any], now: float) -> dict[str, float] | None:
    """The Redis hash read defensively: one value an older version (or a hand edit) stored
    that no Coachview can mean, and the whole hash is ignored, not trusted."""
    try:
        data = {keys.text(k): float(v) for k, v in raw.items()}
    except ValueError:
        return None
    sane = all(math.isfinite(v) and v >= 0 for v in data.values())
    if not sane or data.get("reset_at", 0.0) > now + MAX_RESET_AHEAD_S:
        return None
    return data


class Budget:
    def __init__(
        self,
        client: redis.Redis,
        reserve: int,
        clock: Callable[[], float] = time.time,
        daily_limit: int = DAILY_LIMIT,
        window_s: float = WINDOW_S,
    ) -> None:
        self.r = client
        self.reserve = reserve
        self.clock = clock
        self.daily_limit = daily_limit
        self.window_s = window_s
        self._observe = client.register_script(_OBSERVE)
        self._add_sent = client.register_script(_ADD_SENT)
        # What this process's own last response said: (remaining, reset_at, seen_at).
        self._local: tuple[int, float, float] | None = None
        self._since_shared = 0
        # This process's last response came without X-Rate-Limit-* headers.
        self._headers_lost = False
        # The shared count as of this process's last request: (total, window started).
        self._counted: tuple[int, float] | None = None

    def _far_from_reserve(self, left: int) -> bool:
        return left > self.reserve + NEAR

    def _far_from_local_limit(self, now: float) -> bool:
        """The shared count, as this process last saw it, is well within the limit (other
        workers' requests since: within NEAR), in a window that has not ended."""
        if self._counted is None:
            return False
        total, started = self._counted
        return started + self.window_s > now and total + self.reserve + NEAR < self.daily_limit

    def observe(self, headers: Mapping[str, str]) -> None:
        now = self.clock()
        left = parse_count(headers.get(api.RATE_REMAINING), api.RATE_REMAINING)
        reset_at = parse_reset(headers.get(api.RATE_RESET), now)
        if left is None or reset_at is None:
            # Coachview (or a proxy) stopped sending them: the figures stored from earlier
            # responses no longer see what is sent now, so the local count rules until they
            # come back (they froze at 4,888 left while 44 went out under a limit of 20).
            # Once per stretch without them in this process, not a Redis call per request.
            if not self._headers_lost:
                self._headers_lost = True
                self._local = None
                self.r.delete(KEY)
            return
        self._headers_lost = False
        cap = parse_count(headers.get(api.RATE_LIMIT), api.RATE_LIMIT) or left
        new_window = self._local is None or reset_at > self._local[1] + 2
        self._local = (left, reset_at, now)
        self._since_shared += 1
        # Far from the reserve, Redis hears of it now and then (for `gradesync status`);
        # near it, every response counts.
        if new_window or not self._far_from_reserve(left) or self._since_shared >= SHARE_EVERY:
            self._since_shared = 0
            self._observe(keys=[KEY], args=[cap, left, reset_at, now + MAX_RESET_AHEAD_S, now])

    def sending(self) -> None:
        """One REST request about to go out: counted before it is sent, since Coachview counts
        one that times out or whose answer is lost too; at once, a Redis call beside an HTTP
        request, so `gradesync status` and every worker see the exact figure."""
        now = self.clock()
        total, started = self._add_sent(keys=[SENT], args=[now, self.window_s, _spending_for.get()])
        self._counted = (int(total), float(started))

    def sent(self) -> dict[str, Any] | None:
        """The shared count of the current window: ``total``, ``by_mode``, ``started`` and
        ``resets`` (epochs); ``None`` when no request was counted in a window still open."""
        raw = {keys.text(k): keys.text(v) for k, v in self.r.hgetall(SENT).items()}
        try:
            started = float(raw["started"])
            total = int(raw.get("total", "0"))
            by_mode = {k[5:]: int(v) for k, v in raw.items() if k.startswith("mode:")}
        except (KeyError, ValueError):
            return None
        now = self.clock()
        if not math.isfinite(started) or not started <= now < started + self.window_s:
            return None
        return {
            "total": total,
            "by_mode": by_mode,
            "started": started,
            "resets": started + self.window_s,
        }

    def _local_left(self) -> tuple[int, float | None]:
        """By the local count: requests left above the reserve, and when the window ends."""
        sent = self.sent()
        if sent is None:
            return self.daily_limit - self.reserve, None
        self._counted = (sent["total"], sent["started"])
        left = self.daily_limit - self.reserve - sent["total"]
        return left, sent["resets"]

    def _read(self) -> dict[str, float] | None:
        return _stored(self.r.hgetall(KEY), self.clock())

    def snapshot(self) -> dict[str, Any] | None:
        data = self._read()
        if not data:
            return None
        limit, remaining = int(data.get("limit", 0)), int(data.get("remaining", 0))
        reset_at = data.get("reset_at", 0.0)
        if reset_at <= self.clock():
            return None
        return {
            "limit": limit,
            "remaining": remaining,
            "used": max(0, limit - remaining),
            "reserve": self.reserve,
            "reset_at": datetime.fromtimestamp(reset_at, UTC).isoformat(timespec="seconds"),
            "reset_epoch": reset_at,
        }

    def capacity(self, cost: int) -> int:
        """How many items of ``cost`` requests fit in what is left: by the headers when
        Coachview sent them, else by the local count."""
        data = self._read()
        if data:  # a window past its reset starts with the whole limit again
            fresh = data.get("reset_at", 0.0) > self.clock()
            left = int(data["remaining"] if fresh else data.get("limit", 0)) - self.reserve
        else:
            left, _ = self._local_left()
        return max(0, left) // max(1, cost)

    def check(self) -> None:
        if self._local is not None:
            left, reset_at, seen_at = self._local
            now = self.clock()
            if now - seen_at < LOCAL_FRESH_S and reset_at > now and self._far_from_reserve(left):
                return  # a response moments ago said there is plenty left
        snap = self.snapshot()
        if snap is not None:  # Coachview's own figures win
            if snap["remaining"] <= self.reserve:
                raise BudgetExhausted(snap["reset_epoch"])
            return
        if self._far_from_local_limit(self.clock()):
            return  # no headers, but this process's view of the count says plenty is left
        left, resets = self._local_left()
        if left <= 0 and resets is not None:
            raise BudgetExhausted(resets)
