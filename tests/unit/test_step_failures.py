"""An exception no check foresaw, inside any step, ends the attempt visibly: the record is
``failed`` with ``unexpected_error``, a metric counts it, and nothing personal is kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from gradesync.event import CompletionEvent
from gradesync.ledger import Ledger, utcnow
from gradesync.metrics import FAILED_BY_INSTALLATION_KEY, FAILED_KEY, SharedCollector
from workers import resources, tasks

FIXTURES = Path(__file__).parent.parent / "fixtures"


class Exploding:
    """A directory or roster store whose every call raises, with personal data in the text."""

    def __getattr__(self, name: str) -> Any:
        def explode(*_: Any) -> Any:
            raise RuntimeError("grade 8.5 for learner 57")  # a message that must not be kept

        return explode


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Ledger:
    ledger = Ledger(fakeredis.FakeRedis())
    monkeypatch.setattr(resources, "ledger", lambda: ledger)
    monkeypatch.setattr(resources, "directory", lambda: Exploding())
    monkeypatch.setattr(resources, "rosters", lambda: Exploding())
    return ledger


def test_an_exception_inside_a_step_fails_the_record_visibly(ledger: Ledger) -> None:
    event = CompletionEvent.model_validate(json.loads((FIXTURES / "canonical.json").read_text()))
    rid = ledger.admit(event, utcnow()).record.id
    ledger.start(rid, utcnow())
    ctx = {"facts": {"person_ref": "57", "course_ref": "12", "grade": "8.5"}}

    result = tasks.resolve.apply(args=(ctx, rid))

    assert result.state == "IGNORED"  # handled: the message is not redelivered forever
    record = ledger.get(rid)
    assert record is not None and record.state == "failed"
    assert record.last_error is not None and record.last_error.code == "unexpected_error"
    assert "RuntimeError" in record.last_error.message
    assert "8.5" not in record.last_error.message and "57" not in record.last_error.message
    assert int(ledger.r.hget(FAILED_KEY, "unexpected_error") or 0) == 1
    by_installation = ledger.r.hget(FAILED_BY_INSTALLATION_KEY, "moodle/default|unexpected_error")
    assert int(by_installation or 0) == 1
    registry = CollectorRegistry()
    registry.register(SharedCollector(ledger))
    labels = 'code="unexpected_error",installation="moodle/default"'
    assert (
        f"gradesync_failed_by_installation_total{{{labels}}} 1.0"
        in generate_latest(registry).decode()
    )


def test_an_unreadable_record_does_not_crash_the_worker(ledger: Ledger) -> None:
    event = CompletionEvent.model_validate(json.loads((FIXTURES / "canonical.json").read_text()))
    rid = ledger.admit(event, utcnow()).record.id
    ledger.r.set(f"gs:rec:{rid}", b'{"state": "queued"}')
    result = tasks.fetch_from_lms.apply(args=(rid,))
    assert result.state == "IGNORED"
    assert int(ledger.r.hget(FAILED_KEY, "unreadable_record") or 0) == 1
