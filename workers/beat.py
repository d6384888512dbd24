"""Beat's scheduler: RedBeat, riding out a Redis restart instead of dying of it.

RedBeat extends its lock on every tick; with Redis away for a moment (a graceful restart takes
2-4 s) that raised, beat exited, and the lock it no longer renewed kept a new beat waiting for
minutes. Here a tick that cannot reach Redis is retried a second later, for as long as
``GRADESYNC_BROKER_GIVE_UP_S``; then beat exits (non-zero) for its supervisor to restart it. A
beat that finds its lock gone or taken when Redis is back (Redis lost it, or it expired
meanwhile and another beat took it) exits too: a restarted beat waits for the lock as usual.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from kombu.exceptions import OperationalError
from redbeat import RedBeatScheduler
from redis.exceptions import LockError

from gradesync import logs
from gradesync.settings import get_settings

log = logs.get("gradesync.beat")
RETRY_S = 1.0
# What a Redis that is away looks like from a tick (the schedule's reads, the lock's extend).
REDIS_AWAY = (redis.ConnectionError, redis.TimeoutError, OperationalError)


class BeatLostRedis(RuntimeError):
    """Beat gives up: it exits non-zero and its supervisor (compose's ``restart:``, systemd)
    starts it again. Not a ``SystemExit``: beat treats that as a clean stop (exit 0)."""


class Scheduler(RedBeatScheduler):  # type: ignore[misc]  # redbeat ships no type hints
    _away_since: float | None = None

    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            interval = float(super().tick(*args, **kwargs))
        except REDIS_AWAY as exc:
            return self._redis_away(exc)
        except LockError as exc:
            log.error("beat_lock_lost", error=type(exc).__name__)
            raise BeatLostRedis(str(exc)) from exc
        if self._away_since is not None:
            log.info("beat_redis_back", after_s=round(time.monotonic() - self._away_since, 1))
            self._away_since = None
        return interval

    def _redis_away(self, exc: Exception) -> float:
        now = time.monotonic()
        if self._away_since is None:
            self._away_since = now
        away = now - self._away_since
        if away > get_settings().broker_give_up_s:
            log.error("beat_redis_gone", away_s=round(away), error=type(exc).__name__)
            raise BeatLostRedis(str(exc)) from exc
        log.warning("beat_redis_unavailable", away_s=round(away, 1), error=type(exc).__name__)
        return RETRY_S

    def close(self) -> None:
        """Release the lock if Redis can be reached; if not, it expires by itself."""
        try:
            super().close()
        except REDIS_AWAY as exc:
            log.warning("beat_lock_not_released", error=type(exc).__name__)
