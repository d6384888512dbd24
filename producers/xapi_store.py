"""What the xAPI Statement endpoint remembers besides the ledger, per installation.

- Each statement id it took, with its content digest, for ``GRADESYNC_XAPI_STATEMENT_DAYS``:
  a resent batch is recognised (200, nothing new), an id reused for other content is a 409
  (xAPI-Communication.md 2.1.1/2.1.2). Ignored statements are remembered too: a log store
  sends every activity view, and its resends must cost no more than a look-up.
- The grade of a cmi5 ``passed`` by registration, learner and course: the ``completed`` of
  the same registration carries no score (cmi5_spec.md §9.5.1) and takes it from there.
- The ids voided before their statement arrived: xAPI-Data.md 2.3.2 makes a statement voided
  whenever a voiding statement for it is held, whatever came first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import redis

from gradesync import keys
from gradesync.event import CompletionKey
from gradesync.keys import text


class StatementStore:
    def __init__(self, r: redis.Redis, installation: str, days: int) -> None:
        self.r, self.installation, self.ttl_s = r, installation, days * 86400

    def _statement(self, sid: str) -> str:
        return f"{keys.XAPI_STATEMENT}{self.installation}:{sid}"

    def known(self, sids: Sequence[str]) -> list[str | None]:
        """The digest each id was taken with, ``None`` for an id not seen."""
        if not sids:
            return []
        return [None if v is None else text(v) for v in self.r.mget(map(self._statement, sids))]

    def remember(self, taken: Sequence[tuple[str, str]]) -> None:
        """``(id, digest)`` of statements taken, in one round trip."""
        with self.r.pipeline(transaction=False) as pipe:
            for sid, digest in taken:
                pipe.set(self._statement(sid), digest, nx=True, ex=self.ttl_s)
            pipe.execute()

    def _passed(self, registration: str, key: CompletionKey) -> str:
        mine = hashlib.sha256(f"{registration}|{key.text()}".encode()).hexdigest()[:32]
        return f"{keys.XAPI_PASSED}{mine}"

    def passed_grade(self, registration: str, key: CompletionKey) -> str | None:
        value = self.r.get(self._passed(registration, key))
        return None if value is None else text(value)

    def keep_passed_grade(self, registration: str, key: CompletionKey, grade: str) -> None:
        self.r.set(self._passed(registration, key), grade, ex=self.ttl_s)

    def _voided(self, sid: str) -> str:
        return f"{keys.XAPI_VOIDED}{self.installation}:{sid}"

    def void_ahead(self, sid: str, by: str) -> None:
        """``sid`` was voided (by statement ``by``) before it arrived."""
        self.r.set(self._voided(sid), by, ex=self.ttl_s)

    def voided_ahead(self, sids: Sequence[str]) -> set[str]:
        """Those of ``sids`` voided before they arrived, in one round trip."""
        if not sids:
            return set()
        found = self.r.mget([self._voided(sid) for sid in sids])
        return {sid for sid, by in zip(sids, found, strict=True) if by is not None}
