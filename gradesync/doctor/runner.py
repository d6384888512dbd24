"""Run every area's checks against the live configuration, in the order an operator fixes
them: settings, Redis, Celery, Coachview, the LMSs."""

from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import redis

from gradesync.doctor import (
    celery_checks,
    coachview_checks,
    config,
    lms_checks,
    reconcile_checks,
    redis_checks,
)
from gradesync.doctor.model import Check, Diagnosis, fail, ok
from gradesync.ledger import Ledger, utcnow
from gradesync.settings import (
    ConfigurationError,
    Settings,
    require_coachview,
    require_lms_apis,
)


def redis_location(url: str) -> str:
    """Host, port and database of a Redis URL, without its password."""
    parts = urlsplit(url)
    db = parts.path.lstrip("/") or "0"
    return f"{parts.hostname or '?'}:{parts.port or 6379}/{db}"


def _worker_starts(s: Settings) -> Check:
    """A worker with this configuration starts (it refuses the simulator's defaults outside
    development, and a source whose grades would be lost)."""
    problems = []
    for require in (require_coachview, require_lms_apis):
        try:
            require(s)
        except ConfigurationError as exc:
            problems.append(str(exc))
    if problems:
        return fail("config", "a worker starts", "; ".join(problems), "the variables named")
    return ok("config", "a worker starts", "start-up checks pass")


def diagnose(
    settings: Settings | None = None,
    refused: dict[str, str] | None = None,
    *,
    queue_threshold: int = celery_checks.QUEUE_THRESHOLD,
    ping: Callable[[str], list[str]] = celery_checks.ping_workers,
    coachview_transport: httpx.BaseTransport | None = None,
    lms_transport: httpx.BaseTransport | None = None,
    redis_client: redis.Redis | None = None,
) -> Diagnosis:
    if settings is None:
        settings, refused = config.load()
    refused = refused or {}
    checks: list[Check] = config.refused_checks(refused, lms_checks.SECRET_PREFIX)
    client = redis_client or redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=3, socket_timeout=5
    )
    try:
        found = redis_checks.check(client, redis_location(settings.redis_url))
        checks += found
        if found[0].status == "ok":  # Celery's broker is this Redis: no point without it
            checks += celery_checks.check(client, lambda: ping(settings.redis_url), queue_threshold)
            checks += reconcile_checks.check(Ledger(client), settings, utcnow())
    finally:
        if redis_client is None:
            client.close()
    checks.append(_worker_starts(settings))
    coachview, spent = coachview_checks.check(settings, coachview_transport)
    checks += coachview
    checks += _installations(settings, refused, lms_transport)
    return Diagnosis(checks=checks, coachview_requests=spent)


def _installations(
    s: Settings, refused: dict[str, str], transport: httpx.BaseTransport | None
) -> list[Check]:
    """Every installation's API and secret; sources that cannot be read are one failed check
    listing every problem (no process would start with them)."""
    try:
        s.sources  # noqa: B018 -- loads and validates them
    except ConfigurationError as exc:
        where = s.sources_path or "the variables named"
        return [fail("lms", "sources", str(exc), where)]
    return (
        lms_checks.check(s, transport)
        + lms_checks.secrets(s, refused)
        + lms_checks.ignored(s, os.environ)
        + lms_checks.person_match(s)
    )
