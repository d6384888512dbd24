"""Reconciliation's Redis keys per installation (see :func:`gradesync.keys.reconcile`): the
cursor and the pass under way, the learners settled per course, the completions it found, the
last run's summary, and the lock that keeps to one run at a time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import redis

from gradesync import keys
from gradesync.event import CompletionKey
from gradesync.keys import text
from gradesync.ledger import Ledger
from gradesync.reconcile.plan import Found, State, Summary, is_reconciled

# The lock's life: each LMS answer renews it (the run's keepalive), so a run killed with -9
# (no ``finally``) frees it within this; far above one LMS call's time-outs.
LOCK_S = 300
# Found completions are kept this long for the "no webhook delivered it" figure (a week is
# shown; the rest is margin for a grace period of days).
FOUND_KEPT = timedelta(days=30)


class Store:
    def __init__(self, ledger: Ledger, installation: str) -> None:
        self.ledger = ledger
        self.r: redis.Redis = ledger.r
        self.installation = installation

    def _key(self, part: str) -> str:
        return keys.reconcile(self.installation, part)

    def lock(self) -> Any:
        return self.r.lock(self._key("lock"), timeout=LOCK_S, blocking=False)

    # -- the pass ------------------------------------------------------------------------------

    def state(self) -> State:
        raw = self.r.get(self._key("state"))
        return State.model_validate_json(raw) if raw else State()

    def save(self, state: State) -> None:
        self.r.set(self._key("state"), state.model_dump_json())

    def settled(self, course_id: str, since: datetime) -> set[str]:
        """Learners of a course whose answer cannot change what a pass from ``since`` records:
        they completed before it. Not asked again — unless a pass looks back further (an
        operator's wider ``--since``), which asks them anew."""
        raw = self.r.hgetall(self._key(f"settled_at:{course_id}"))
        cut = since.timestamp()
        return {text(u) for u, at in raw.items() if float(at) < cut}

    def settle(self, course_id: str, user_id: str, completed: datetime) -> None:
        self.r.hset(self._key(f"settled_at:{course_id}"), user_id, completed.timestamp())

    def open_learners(self, course_id: str) -> set[str]:
        """Learners whose last answer was "not complete" or "left" (see ``plan.removed``)."""
        return {text(u) for u in self.r.smembers(self._key(f"open:{course_id}"))}

    def mark_open(self, course_id: str, user_id: str) -> None:
        self.r.sadd(self._key(f"open:{course_id}"), user_id)

    def close(self, course_id: str, users: Iterable[str]) -> None:
        gone = list(users)
        if gone:
            self.r.srem(self._key(f"open:{course_id}"), *gone)

    # -- what the ledger knows ---------------------------------------------------------------

    def known(self, kind: str, instance: str, course_id: str, users: Sequence[str]) -> set[str]:
        """The learners of ``users`` whose completion the ledger holds or an operator purged:
        one round trip for the course."""
        rids = [
            CompletionKey.model_validate(
                {
                    "source": kind,
                    "source_instance": instance,
                    "person_id": u,
                    "course_id": course_id,
                }
            ).id
            for u in users
        ]
        with self.r.pipeline(transaction=False) as pipe:
            for rid in rids:
                pipe.exists(f"{keys.RECORD}{rid}")
                pipe.sismember(keys.TOMBSTONES, rid)
            answers = pipe.execute()
        return {u for n, u in enumerate(users) if answers[2 * n] or answers[2 * n + 1]}

    def tombstoned(self, rid: str) -> bool:
        return bool(self.r.sismember(keys.TOMBSTONES, rid))

    # -- what it found -------------------------------------------------------------------------

    def found(self, rid: str, found: Found) -> None:
        self.r.hset(self._key("found"), rid, found.model_dump_json())

    def all_found(self) -> dict[str, Found]:
        raw = self.r.hgetall(self._key("found"))
        return {text(k): Found.model_validate_json(v) for k, v in raw.items()}

    def forget_found(self, rids: Iterable[str]) -> None:
        ids = list(rids)
        if ids:
            self.r.hdel(self._key("found"), *ids)

    def webhook_came(self, rids: Iterable[str]) -> set[str]:
        """Of these records, those a webhook reached after reconciliation recorded them (their
        history names an event id that is not reconciliation's)."""
        came: set[str] = set()
        for rid in rids:
            for entry in self.ledger.history(rid):
                event_id = entry.get("event_id")
                if isinstance(event_id, str) and not is_reconciled(event_id):
                    came.add(rid)
                    break
        return came

    # -- the last run --------------------------------------------------------------------------

    def last(self) -> Summary | None:
        raw = self.r.get(self._key("last"))
        return Summary.model_validate_json(raw) if raw else None

    def remember(self, summary: Summary) -> None:
        self.r.set(self._key("last"), summary.model_dump_json())
