"""One gate for every worker's Coachview requests, in Redis: a global rate limit
(``COACHVIEW_RATE_LIMIT_PER_S``) and a global pause after a 429's ``Retry-After``.

The rate limit is a GCRA (a token bucket of one token): requests are spaced 1/(0.9·N) s apart
across all workers, so no second ever sees more than N, even with some network jitter. The clock
is Redis's own, shared by all.

A worker waits for its turn only briefly (``max_wait_s``, a minute at most): a longer pause (a
``Retry-After`` of hours) raises :class:`Paused` instead, and the record waits in the ledger,
not in a sleeping worker.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import redis

from gradesync import keys
from gradesync.errors import Transient
from gradesync.http import MAX_RETRY_AFTER_S

PAUSE = keys.GATE_PAUSE
JITTER_MARGIN = 0.9

TAT = keys.GATE_TAT  # the theoretical arrival time of the next allowed request

# Returns seconds to wait (0: go). KEYS: pause, tat. ARGV: interval (0 = no rate limit), the
# longest pause. A stored pause that is not a number within it (written by an older version)
# is dropped, not obeyed: it would hold every worker forever.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local pause = tonumber(redis.call('GET', KEYS[1]) or '0')
if pause == nil or pause ~= pause or pause > now + tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  pause = 0
end
if pause > now then return tostring(pause - now) end
local interval = tonumber(ARGV[1])
if interval <= 0 then return '0' end
local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
if tat > now then return tostring(tat - now) end
redis.call('SET', KEYS[2], tostring(now + interval), 'PX', math.ceil(interval * 1000) + 1000)
return '0'
"""

# Extend the pause to now + seconds (never shorten it). KEYS: pause. ARGV: seconds.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local untilt = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if untilt > current then
  redis.call('SET', KEYS[1], tostring(untilt), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return 1
"""


class Paused(Transient):
    """Coachview asked every worker to hold off for longer than a worker may wait."""

    def __init__(self, remaining_s: float) -> None:
        super().__init__(
            f"Coachview asked to wait {remaining_s:.0f} s (Retry-After)",
            retry_after=remaining_s,
            code="rate_limited",
        )


class Gate:
    def __init__(
        self,
        client: redis.Redis,
        rate_per_s: float | None,
        sleep: Callable[[float], None] = time.sleep,
        max_wait_s: float = 60.0,
    ) -> None:
        # 10 % under the limit: requests spaced at send time can arrive bunched (jitter).
        self.interval = 1.0 / (JITTER_MARGIN * rate_per_s) if rate_per_s else 0.0
        self.sleep = sleep
        self.max_wait_s = max_wait_s
        self._acquire = client.register_script(_ACQUIRE)
        self._pause = client.register_script(_PAUSE)

    def wait_turn(self) -> float:
        """Block until this process may send; returns how long it waited. Raises
        :class:`Paused` rather than wait longer than ``max_wait_s`` in all."""
        waited = 0.0
        while True:
            wait = float(self._acquire(keys=[PAUSE, TAT], args=[self.interval, MAX_RETRY_AFTER_S]))
            if wait <= 0:
                return waited
            if waited + wait > self.max_wait_s:
                raise Paused(wait)
            self.sleep(wait)
            waited += wait

    def pause(self, seconds: float) -> None:
        """Coachview said 429 + Retry-After: nobody sends before it has elapsed (a day at
        most; a value that is not a finite number is no pause)."""
        if math.isfinite(seconds) and seconds > 0:
            self._pause(keys=[PAUSE], args=[min(seconds, MAX_RETRY_AFTER_S)])
