"""Process-wide resources of a worker: one Redis pool, one Coachview client (one token)."""

from __future__ import annotations

import logging
import re
from functools import lru_cache

import httpx
import redis
from celery.signals import setup_logging, worker_process_init
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from gradesync import logs, metrics
from gradesync.coachview.budget import Budget
from gradesync.coachview.cache import Directory
from gradesync.coachview.client import CoachviewClient
from gradesync.coachview.gate import Gate
from gradesync.coachview.rosters import Rosters
from gradesync.ledger import Ledger
from gradesync.settings import Settings, get_settings
from gradesync.usage import budget_for
from workers import waits


def settings() -> Settings:
    return get_settings()


# A Redis restart takes seconds. A step's ledger writes ride it out for about as long as its
# publish of the next step does (celeryconfig.task_publish_retry_policy, ~30 s) instead of
# failing the step after redis-py's default retries (~5 s). A WATCHed transaction interrupted
# by a lost connection raises WatchError and is decided again from a fresh read.
RIDE_OUT_REDIS_RESTART = Retry(ExponentialBackoff(cap=2.0, base=0.25), retries=20)


@lru_cache(maxsize=1)
def ledger() -> Ledger:
    # A connect timeout: a TLS URL pointed at a plain Redis (or a black hole) must not hang.
    client = redis.Redis.from_url(
        settings().redis_url, retry=RIDE_OUT_REDIS_RESTART, socket_connect_timeout=10
    )
    return Ledger(client)


@lru_cache(maxsize=1)
def budget() -> Budget:
    return budget_for(ledger().r, settings())


@lru_cache(maxsize=1)
def coachview() -> CoachviewClient:
    s = settings()
    return CoachviewClient(
        s.coachview_base_url,
        s.coachview_client_id,
        s.coachview_client_secret.get_secret_value(),
        scope=s.coachview_scope,
        timeout_s=s.coachview_timeout_s,
        budget=budget(),
        gate=Gate(
            ledger().r,
            s.coachview_rate_limit_per_s,
            max_wait_s=waits.max_inline_wait(s.visibility_timeout_s),
        ),
        on_response=_observe,
        allow_simulator=s.insecure_dev,
    )


_ID = re.compile(r"/\d+(?=/|$)")


_latency = metrics.LatencyBuffer()


def _observe(response: httpx.Response, seconds: float) -> None:
    route = f"{response.request.method} {_ID.sub('/{id}', response.request.url.path)}"
    _latency.observe(ledger().r, route, response.status_code, seconds)


@lru_cache(maxsize=1)
def directory() -> Directory:
    return Directory(coachview(), ledger().r, settings().coachview_cache_ttl_s)


@lru_cache(maxsize=1)
def rosters() -> Rosters:
    return Rosters(coachview(), ledger().r, settings().coachview_roster_ttl_s)


@setup_logging.connect
def _logging(**_: object) -> None:
    # Celery logs every task's return value at INFO ("Task … succeeded: {…}"); ours carry
    # Coachview state (grades). Our own step events replace those lines.
    logging.basicConfig(level=settings().log_level.upper(), format="%(message)s")
    for noisy in ("celery.app.trace", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@worker_process_init.connect
def _fresh_after_fork(**_: object) -> None:
    # A forked child must not share the parent's sockets.
    for cached in (ledger, budget, coachview, directory, rosters):
        cached.cache_clear()
    s = settings()
    logs.configure(s.log_level, s.log_format)
