"""One event id with different bodies, admitted at once by several processes' connections to a
real redis-server: exactly one gets in (issue 25 item 9). The event-id index is read inside the
ledger's transaction, so two bodies for two different completion keys cannot both pass it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import redis

from gradesync.ledger import Ledger, utcnow
from gradesync.record import Admitted
from tests.conftest import REDIS_PORT
from tests.integration.conftest import Stack, canonical

CALLERS = 10
ROUNDS = 15


def _admit_at_once(round_no: int) -> list[Admitted]:
    start = threading.Barrier(CALLERS)

    def one(i: int) -> Admitted:
        ledger = Ledger(redis.Redis(port=REDIS_PORT))  # a connection of its own, like a process
        ledger.r.ping()
        event = canonical(event_id=f"race-{round_no}", person_id=f"p{round_no}-{i}")
        start.wait()
        return ledger.admit(event, utcnow()).outcome

    with ThreadPoolExecutor(CALLERS) as pool:
        return list(pool.map(one, range(CALLERS)))


def test_one_event_id_with_different_bodies_at_once_gets_in_once(clean: Stack) -> None:
    for round_no in range(ROUNDS):
        outcomes = _admit_at_once(round_no)
        assert sorted(outcomes) == ["conflict"] * (CALLERS - 1) + ["created"], (round_no, outcomes)
    assert clean.ledger.counts()["queued"] == ROUNDS
