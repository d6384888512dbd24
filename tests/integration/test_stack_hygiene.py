"""The test stack's reset leaves no message of one test to act on the next."""

from __future__ import annotations

from gradesync.ledger import utcnow
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
