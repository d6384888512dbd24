"""Redis: reachable, durable (AOF), never evicting the ledger, and with room to grow."""

from __future__ import annotations

import redis
from pydantic import BaseModel

from gradesync import keys
from gradesync.doctor.model import Check, fail, ok, warn

AREA = "redis"
# Share of maxmemory in use at which doctor speaks up; at 100 % with noeviction every write
# (and so every accepted completion) is refused.
WARN_AT = 0.75
FAIL_AT = 0.90
HOST_FIX = "REDIS_URL's server: set it in redis.conf or the host's control panel"


class RedisFacts(BaseModel):
    """What the server said about itself; ``None`` where it would not say."""

    appendonly: str | None = None
    policy: str | None = None
    maxmemory: int | None = None
    used: int | None = None
    source: str = "CONFIG"  # or "INFO" when the host disabled CONFIG, or "" when both were


def read_facts(client: redis.Redis) -> RedisFacts:
    try:
        config = {
            **client.config_get("appendonly"),
            **client.config_get("maxmemory-policy"),
            **client.config_get("maxmemory"),
        }
        facts = RedisFacts(
            appendonly=_text(config.get("appendonly")),
            policy=_text(config.get("maxmemory-policy")),
            maxmemory=_int(config.get("maxmemory")),
        )
    except redis.ResponseError:  # managed hosts often rename or disable CONFIG
        facts = RedisFacts(source="INFO")
    try:
        memory = client.info("memory")
        persistence = client.info("persistence") if facts.appendonly is None else {}
    except redis.ResponseError:
        return facts if facts.source == "CONFIG" else RedisFacts(source="")
    update: dict[str, object] = {"used": _int(memory.get("used_memory"))}
    if facts.source == "INFO":
        aof = persistence.get("aof_enabled")
        update |= {
            "appendonly": None if aof is None else ("yes" if str(aof) == "1" else "no"),
            "policy": _text(memory.get("maxmemory_policy")),
            "maxmemory": _int(memory.get("maxmemory")),
        }
    return facts.model_copy(update=update)


def judge(facts: RedisFacts) -> list[Check]:
    if not facts.source:
        return [
            warn(
                AREA,
                "configuration",
                "the host disables CONFIG and INFO: AOF, eviction policy and memory unknown",
                f"confirm appendonly yes and maxmemory-policy noeviction with {HOST_FIX}",
            )
        ]
    checks: list[Check] = []
    if facts.source == "INFO":
        checks.append(warn(AREA, "CONFIG", "the host disables CONFIG; read from INFO instead", ""))
    checks.append(
        ok(AREA, "AOF", "appendonly yes")
        if facts.appendonly == "yes"
        else fail(
            AREA,
            "AOF",
            f"appendonly {facts.appendonly}: a Redis restart loses accepted completions",
            f"appendonly yes (appendfsync everysec) on {HOST_FIX}",
        )
    )
    checks.append(
        ok(AREA, "eviction", "maxmemory-policy noeviction")
        if facts.policy == "noeviction"
        else fail(
            AREA,
            "eviction",
            f"maxmemory-policy {facts.policy}: Redis may delete ledger records when full",
            f"maxmemory-policy noeviction on {HOST_FIX}",
        )
    )
    checks.append(_memory(facts))
    return checks


def _memory(facts: RedisFacts) -> Check:
    used = facts.used or 0
    if not facts.maxmemory:
        return ok(AREA, "memory", f"{_mb(used)} used; no maxmemory (bounded by the machine)")
    share = used / facts.maxmemory
    text = f"{_mb(used)} of {_mb(facts.maxmemory)} used ({share:.0%})"
    if share >= FAIL_AT:
        return fail(
            AREA,
            "memory",
            text + ": at 100 % every new completion is refused",
            f"raise maxmemory on {HOST_FIX}, or `gradesync purge --older-than DAYS`",
        )
    if share >= WARN_AT:
        return warn(
            AREA,
            "memory",
            text,
            f"raise maxmemory on {HOST_FIX}, or `gradesync purge --older-than DAYS`",
        )
    return ok(AREA, "memory", text)


def check(client: redis.Redis, url_hint: str) -> list[Check]:
    try:
        client.ping()
    except redis.RedisError as exc:
        return [fail(AREA, "reachable", f"{url_hint}: {type(exc).__name__}: {exc}", "REDIS_URL")]
    return [ok(AREA, "reachable", url_hint), *judge(read_facts(client))]


def _text(value: object) -> str | None:
    return None if value is None else keys.text(value)


def _int(value: object) -> int | None:
    text = _text(value)
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def _mb(n: int) -> str:
    return f"{n / 1_048_576:.1f} MB"
