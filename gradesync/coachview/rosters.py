"""Course rosters in Redis: read once by one worker, shared by all for a short while.

A course is "in demand" when several of its completions are asked for within the roster's
lifetime (a counter per course that expires with it). Then one worker reads the roster (a
``SET NX`` lock) while the others wait briefly for it, or look their learner up directly when
it does not come. Rosters are personal data: hashed key names, a lifetime of minutes
(COACHVIEW_ROSTER_TTL_S)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import redis

from gradesync import logs
from gradesync.coachview.cache import cache_key
from gradesync.coachview.client import (
    IDS_PER_READ,
    PAGE_SIZE,
    PARTICIPATION,
    REQUEST_COMPONENT,
    CoachviewClient,
    TooManyRows,
)
from gradesync.entities import Component
from gradesync.roster import Roster, list_reads, wants_roster

# Longer than any roster read takes; a worker killed while reading frees it this much later.
LOCK_S = 30
# How long a worker waits for another's roster before looking its learner up directly.
WAIT_S = 5.0
POLL_S = 0.05
# Cached instead of a roster for a course too big to read in MAX_PAGES pages: not tried again
# by every worker for the roster's lifetime.
TOO_BIG = b"-"
# How long a course's roster cost is remembered (a count, not personal data), and the cost
# remembered for one too big to read: rosters are off for that course meanwhile.
READS_KEPT_S = 86_400
TOO_MANY_READS = 1_000_000
log = logs.get("gradesync.coachview")


class Rosters:
    def __init__(
        self,
        client: CoachviewClient,
        cache: redis.Redis,
        ttl_s: int,
        *,
        wait_s: float = WAIT_S,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.cache = cache
        self.ttl_s = ttl_s
        self.wait_s = wait_s
        self._sleep = sleep
        self._clock = clock

    def wanted(self, course_ref: str) -> bool:
        """Count one more completion of this course asked for; whether its roster is worth
        reading now (gradesync.roster.wants_roster)."""
        if not self.ttl_s:
            return False
        key = cache_key("demand", course_ref)
        # The window starts with the first completion (SET NX EX, which INCR keeps; no
        # EXPIRE NX: that needs Redis 7).
        with self.cache.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=self.ttl_s, nx=True)
            pipe.incr(key)
            pipe.get(cache_key("roster-reads", course_ref))
            _, count, reads = pipe.execute()
        return wants_roster(int(count), self.ttl_s, None if reads is None else int(reads))

    def get(
        self, course_ref: str, components: Sequence[Component], fields: Sequence[str]
    ) -> Roster | None:
        """The course's roster: cached, or read now by this worker, or by another one while
        this one waits; None when none comes in time or the course is too big for one."""
        key = cache_key("roster", course_ref, ",".join(fields))
        lock = f"{key}:lock"
        deadline = self._clock() + self.wait_s
        while True:
            hit = self.cache.get(key)
            if hit is not None:
                return None if hit == TOO_BIG else Roster.model_validate_json(hit)
            if self.cache.set(lock, "1", nx=True, ex=LOCK_S):
                try:
                    roster = self._read(components, fields)
                    kept = TOO_BIG if roster is None else roster.model_dump_json().encode()
                    reads = TOO_MANY_READS if roster is None else roster.reads
                    with self.cache.pipeline(transaction=False) as pipe:
                        pipe.set(key, kept, ex=self.ttl_s)
                        pipe.set(cache_key("roster-reads", course_ref), reads, ex=READS_KEPT_S)
                        pipe.execute()
                    return roster
                finally:
                    self.cache.delete(lock)
            if self._clock() >= deadline:
                return None
            self._sleep(POLL_S)

    def _read(self, components: Sequence[Component], fields: Sequence[str]) -> Roster | None:
        ids = [c.id for c in components]
        try:
            requests = self.client.rows(REQUEST_COMPONENT, ids)
            participations = self.client.rows(PARTICIPATION, ids)
            person_ids = {rc.person_id for rc in requests}
            persons = self.client.persons_by_ids(person_ids, fields)
        except TooManyRows:
            # Counts only: which course is personal enough (a learner's training).
            log.warning("roster_too_big", components=len(ids))
            return None
        reads = (
            list_reads(len(requests), PAGE_SIZE)
            + list_reads(len(participations), PAGE_SIZE)
            + -(-len(person_ids) // IDS_PER_READ)
        )
        return Roster(
            persons=persons, requests=requests, participations=participations, reads=reads
        )
