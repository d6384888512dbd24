"""The test stack's reset leaves no message of one test to act on the next."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gradesync.ledger import utcnow
from gradesync.procs import ProcessDied, free_port, start_redis
from tests.integration.conftest import Stack, canonical
from workers.pipeline import completion_chain


def test_a_message_held_from_an_earlier_test_does_not_act_after_reset(clean: Stack) -> None:
    event = canonical(event_id="left-over")
    # An earlier test's chain for the same completion, held by the worker in a countdown.
    completion_chain(event.key.id).apply_async(countdown=2)
    clean.reset()
    clean.seed()
    rid = clean.ledger.admit(event, utcnow()).record.id  # recorded, deliberately not sent
    clean.wait_idle()
    record = clean.ledger.get(rid)
    assert record is not None and record.state == "queued"
    assert clean.component(7001, 9001)["writes"]["result"] == 0


def test_a_redis_started_on_a_port_another_server_holds_fails_at_once(tmp_path: Path) -> None:
    """The other server answers a ping too: starting must not take that for its own."""
    first = start_redis(port := free_port(), tmp_path, dict(os.environ), name="first")
    try:
        with pytest.raises(ProcessDied, match="second exited"):
            start_redis(port, tmp_path, dict(os.environ), name="second")
    finally:
        first.stop()
