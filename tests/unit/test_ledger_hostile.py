"""The ledger against hostile or damaged input: event ids are scoped per installation, and a
record that cannot be loaded never takes a listing, a look-up or a worker down with it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest

from gradesync.event import CompletionEvent
from gradesync.ledger import AmbiguousEventId, Ledger
from gradesync.record import Record, Unreadable, UnreadableRecord
from tests.unit.test_ledger import event as ledger_event

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


def event(**overrides: Any) -> CompletionEvent:
    defaults = {"source_instance": "default", "event_id": "moodle-default-course_completed-1"}
    return ledger_event(**{**defaults, **overrides})


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(fakeredis.FakeRedis())


def test_an_event_id_claimed_by_another_source_does_not_block_the_real_one(
    ledger: Ledger,
) -> None:
    # A canonical caller files an xAPI completion under Moodle's predictable event id first.
    squatter = event(source="xapi", person_id="666", grade="1")
    assert ledger.admit(squatter, T0).outcome == "created"
    real = ledger.admit(event(), T0)
    assert real.outcome == "created" and real.record.event.person_id == "57"
    # Same source, other installation: a namespace of its own too.
    other = ledger.admit(event(source_instance="https://other.example.nl"), T0)
    assert other.outcome == "created"
    # Within one installation the index still catches a replay with another body.
    assert ledger.admit(event(person_id="58"), T0).outcome == "conflict"
    assert ledger.admit(event(), T0).outcome == "duplicate"


def test_looking_up_an_event_id_shared_by_sources_asks_for_the_record_id(
    ledger: Ledger,
) -> None:
    ledger.admit(event(source="xapi"), T0)
    ledger.admit(event(), T0)
    with pytest.raises(AmbiguousEventId, match="give the record id"):
        ledger.find("moodle-default-course_completed-1")
    only = ledger.admit(event(event_id="unique-1", course_id="13"), T0).record
    assert ledger.find("unique-1") == only


def _damage(ledger: Ledger, rid: str, **fields: Any) -> None:
    key = f"gs:rec:{rid}"
    data = json.loads(ledger.r.get(key) or b"{}")
    data["event"].update(fields)
    ledger.r.set(key, json.dumps(data))


def test_an_unreadable_record_is_listed_as_such_and_can_be_removed(ledger: Ledger) -> None:
    good = ledger.admit(event(event_id="good", course_id="1"), T0).record
    bad = ledger.admit(event(event_id="bad", course_id="2"), T0).record
    _damage(ledger, bad.id, grade="9" * 400)  # as an older version could have stored it

    listed = ledger.newest()
    assert {type(r) for r in listed} == {Record, Unreadable}
    (unreadable,) = [r for r in listed if isinstance(r, Unreadable)]
    assert unreadable.id == bad.id and unreadable.problems == ["event.grade: value_error"]

    with pytest.raises(UnreadableRecord) as info:
        ledger.find(bad.id)
    assert "999" not in str(info.value)  # names the field, never the value
    assert ledger.purge(bad.id, ("queued",)) is False  # purge skips it, does not crash
    assert ledger.remove_unreadable(good.id) is False  # only unreadable ones
    assert ledger.remove_unreadable(bad.id) is True
    assert [r.id for r in ledger.newest()] == [good.id]
    assert ledger.counts()["queued"] == 1


def test_a_canonical_caller_cannot_claim_the_event_id_a_webhook_will_send(
    ledger: Ledger,
) -> None:
    # Same source and installation as Moodle's, chosen freely in a canonical body.
    squatter = ledger.admit(event(person_id="666", grade="1"), T0, channel="canonical")
    assert squatter.outcome == "created"
    real = ledger.admit(event(), T0, channel="moodle")
    assert real.outcome == "created" and real.record.event.person_id == "57"
    assert ledger.admit(event(), T0, channel="moodle").outcome == "duplicate"
