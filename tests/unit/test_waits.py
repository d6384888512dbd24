"""Long waits never sleep inside a task (issue 10.6): the gate refuses to wait past a minute, a
long Retry-After defers the record in the ledger, and no countdown nears the visibility timeout."""

from __future__ import annotations

import time
from datetime import timedelta

import fakeredis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradesync.coachview.gate import Gate, Paused
from gradesync.errors import Transient
from gradesync.event import CompletionEvent
from gradesync.ledger import Ledger, utcnow
from workers import resources, tasks, waits


def test_the_gate_raises_instead_of_sleeping_through_a_long_pause() -> None:
    slept: list[float] = []
    gate = Gate(fakeredis.FakeRedis(), None, sleep=slept.append, max_wait_s=60)
    gate.pause(3600)
    with pytest.raises(Paused) as caught:
        gate.wait_turn()
    assert slept == []
    assert caught.value.retry_after is not None and 3590 < caught.value.retry_after <= 3600


def test_the_gate_still_waits_out_a_short_pause() -> None:
    gate = Gate(fakeredis.FakeRedis(), None, max_wait_s=60)
    gate.pause(0.2)
    started = time.monotonic()
    assert gate.wait_turn() > 0
    assert time.monotonic() - started >= 0.15


@given(
    delay=st.floats(min_value=0, max_value=10**7, allow_nan=False),
    visibility=st.integers(min_value=1, max_value=10**6),
)
def test_no_countdown_reaches_the_visibility_timeout(delay: float, visibility: int) -> None:
    countdown = waits.countdown(delay, visibility)
    assert countdown is None or countdown <= min(60, visibility / 2)
    assert countdown is not None or delay > min(60, visibility / 2)


def test_a_retry_after_of_an_hour_defers_the_record_and_frees_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    event = CompletionEvent.model_validate(
        {"source": "ilias", "person_id": "57", "course_id": "12", "completed_at": utcnow()}
    )
    rid = ledger.admit(event, utcnow()).record.id
    monkeypatch.setattr(resources, "ledger", lambda: ledger)

    def coachview_says_wait_an_hour(*_: object) -> None:
        raise Transient("429", retry_after=3600, code="rate_limited")

    monkeypatch.setattr(tasks, "enrich", coachview_says_wait_an_hour)
    started = time.monotonic()
    tasks.fetch_from_lms.apply(args=(rid,))  # eager: the step runs here, as in a worker
    assert time.monotonic() - started < 5  # no sleep, no in-task countdown
    record = ledger.get(rid)
    assert record is not None and record.state == "queued"
    assert record.last_error is not None and record.last_error.code == "rate_limited"
    assert record.next_attempt is not None
    assert abs(record.next_attempt - (utcnow() + timedelta(hours=1))) < timedelta(seconds=10)
    assert ledger.take_deferred(utcnow() + timedelta(minutes=59)) == []
    assert ledger.take_deferred(utcnow() + timedelta(minutes=61)) == [rid]
