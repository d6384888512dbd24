"""Shadow mode (COACHVIEW_DELIVERY=shadow, issue 13 part 2) over fakeredis: the ledger's
``shadowed`` transitions, the history of would-be writes, and the start of real delivery."""

from __future__ import annotations

import json
from datetime import date, time, timedelta
from typing import Any

import pytest

from gradesync.entities import Participation, RequestComponent
from gradesync.errors import Permanent, Unresolved
from gradesync.ledger import Ledger
from gradesync.metrics import FAILED_KEY
from gradesync.record import LedgerError
from gradesync.report import build
from gradesync.settings import Settings
from gradesync.steps import ResultKept, Skip, Write, would
from tests.unit.test_ledger import AMS, NOT_FOUND, T0, event, ledger
from workers import resources, tasks

__all__ = ["ledger"]  # the fixture, shared with the store's tests


def shadow_run(ledger: Ledger, **overrides: Any) -> str:
    """A record admitted and sent in shadow mode, its run started."""
    rid = ledger.admit(event(**overrides), T0).record.id
    assert ledger.delivery(rid, "shadow") == "shadow"
    ledger.start(rid, T0)
    return rid


def park(ledger: Ledger, rid: str, max_retries: int = 30) -> str | None:
    return ledger.unresolved(
        rid, T0, NOT_FOUND, max_retries=max_retries, retry_time=time(3), tz=AMS
    )


# -- the ledger --------------------------------------------------------------------------------


def test_the_mode_is_decided_at_the_first_send_and_kept(ledger: Ledger) -> None:
    rid = ledger.admit(event(), T0).record.id
    assert ledger.delivery(rid, "shadow") == "shadow"
    assert ledger.delivery(rid, "rest") == "shadow"  # a resend by a process set otherwise
    assert ledger.delivery("missing", "rest") == "rest"
    rec = ledger.get(rid)
    assert rec is not None and rec.delivery == "shadow" and rec.state == "queued"


def test_an_unplaceable_shadow_record_is_shadowed_not_unresolved(ledger: Ledger) -> None:
    rid = shadow_run(ledger)
    assert park(ledger, rid) == "shadowed"
    rec = ledger.get(rid)
    assert rec is not None and rec.state == "shadowed" and rec.last_error == NOT_FOUND
    assert rec.next_attempt is None and rec.daily_retries == 0
    # Not in the daily pass: its 30 days start when delivery starts.
    later = T0 + timedelta(days=400)
    assert ledger.due_ids(later) == []
    assert ledger.requeue_due(rid, later, later, 30) == "skipped"
    assert ledger.history(rid)[-1]["what"] == "shadowed"
    assert ledger.history(rid)[-1]["error"]["code"] == "unknown_person"


def test_a_shadow_record_with_no_daily_retries_left_is_still_shadowed(ledger: Ledger) -> None:
    rid = shadow_run(ledger)
    assert park(ledger, rid, max_retries=0) == "shadowed"


def test_a_failure_in_a_shadow_run_is_shadowed_with_the_reason(ledger: Ledger) -> None:
    rid = shadow_run(ledger)
    error = LedgerError(code="ambiguous_person", message="two persons")
    ledger.fail(rid, T0, error)
    rec = ledger.get(rid)
    assert rec is not None and rec.state == "shadowed" and rec.last_error == error


def test_a_rest_record_still_fails_and_parks(ledger: Ledger) -> None:
    rid = ledger.admit(event(), T0).record.id
    ledger.delivery(rid, "rest")
    ledger.start(rid, T0)
    assert park(ledger, rid) == "unresolved"
    other = ledger.admit(event(event_id="e2", person_id="58"), T0).record.id
    ledger.start(other, T0)
    ledger.fail(other, T0, NOT_FOUND)
    assert ledger.counts()["unresolved"] == ledger.counts()["failed"] == 1


def test_a_shadow_run_that_got_through_ends_shadowed_without_error(ledger: Ledger) -> None:
    rid = shadow_run(ledger)
    park(ledger, rid)
    ledger.retry_now(rid, T0)  # still shadow: the data was fixed, shadow it again
    ledger.delivery(rid, "shadow")
    ledger.start(rid, T0)
    ledger.shadowed(rid, T0, "2026-11-20")
    rec = ledger.get(rid)
    assert rec is not None and rec.state == "shadowed" and rec.last_error is None
    assert ledger.history(rid)[-1] == {
        "at": "2026-11-20T14:00:00.000+00:00",
        "what": "shadowed",
        "approval_date": "2026-11-20",
    }
    assert ledger.counts()["shadowed"] == 1


def test_retrying_a_shadowed_record_starts_delivery_from_zero(ledger: Ledger) -> None:
    rid = shadow_run(ledger)
    ledger.start(rid, T0)
    ledger.shadowed(rid, T0, "2026-11-20")
    queued = ledger.retry_now(rid, T0 + timedelta(days=3))
    assert queued.state == "queued" and queued.attempts == 0 and queued.daily_retries == 0
    assert queued.delivery is None  # the process that sends it decides: the mode now set
    assert queued.event.completed_at == event().completed_at
    assert ledger.take_unsent(T0 + timedelta(days=4), T0 + timedelta(days=4)) == [rid]
    assert ledger.delivery(rid, "rest") == "rest"
    assert ledger.history(rid)[-1]["what"] == "operator_retry"
    assert ledger.history(rid)[-1]["was"] == "shadowed"
    started = ledger.start(rid, T0 + timedelta(days=3))
    assert started is not None and started.attempts == 1


def test_retrying_other_states_keeps_their_counters_and_mode(ledger: Ledger) -> None:
    rid = ledger.admit(event(), T0).record.id
    ledger.delivery(rid, "resultlink")
    ledger.start(rid, T0)
    park(ledger, rid)
    queued = ledger.retry_now(rid, T0)
    assert queued.attempts == 1 and queued.delivery == "resultlink"
    assert "was" not in ledger.history(rid)[-1]


def test_a_new_event_for_a_shadowed_record_starts_delivery_from_zero(ledger: Ledger) -> None:
    rid = shadow_run(ledger)
    ledger.shadowed(rid, T0, "2026-11-20")
    admission = ledger.admit(event(event_id="e2", grade="9"), T0)
    assert admission.enqueue and admission.record.state == "queued"
    assert admission.record.attempts == 0 and admission.record.delivery is None


# -- the would-be writes -------------------------------------------------------------------------


SEAT = {"id": 1, "enrolment_id": 7001, "component_id": 9001, "person_id": 1001}


def participation(**fields: Any) -> Participation:
    return Participation.model_validate({**SEAT, **fields})


def request(**fields: Any) -> RequestComponent:
    return RequestComponent.model_validate({**SEAT, **fields})


def test_would_names_each_field_with_old_and_new_value() -> None:
    write = Write(fields={"approved": True, "approval_date": "2026-11-20"})
    assert would(write, request()) == {
        "writes": [
            {"field": "approved", "old": False, "new": True},
            {"field": "approval_date", "old": None, "new": "2026-11-20"},
        ]
    }
    assert would(Skip(), request()) == {"reason": "already_done"}
    kept = ResultKept(existing="6.0", new="8.5")
    assert would(Write(fields={"passed": True}, kept=kept), participation(result="6.0")) == {
        "writes": [{"field": "passed", "old": False, "new": True}],
        "note": {"code": "result_kept_existing", "existing": "6.0", "new": "8.5"},
    }


def test_would_values_are_json_as_history_stores_them() -> None:
    # Odd data Coachview may hold: a date without the approval. History is JSON.
    write = Write(fields={"approved": True, "approval_date": "2026-11-20"})
    planned = would(write, request(approval_date=date(2026, 1, 2)))
    assert planned["writes"][1] == {
        "field": "approval_date",
        "old": "2026-01-02",
        "new": "2026-11-20",
    }
    json.dumps(planned)


class NoWrites:
    """A Coachview client that must not be used by a shadow write step at all."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"shadow mode called Coachview: {name}")


@pytest.fixture
def worker(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    monkeypatch.setattr(resources, "ledger", lambda: ledger)
    monkeypatch.setattr(resources, "coachview", lambda: NoWrites())
    return ledger


WRITE_TASKS = (tasks.write_participation, tasks.write_request_component)


def test_shadow_write_steps_record_exactly_the_writes_and_send_nothing(worker: Ledger) -> None:
    rid = shadow_run(worker)
    facts = {
        "person_ref": "57",
        "course_ref": "12",
        "grade": "8.5",
        "approved_on": "2026-11-20",
        "delivery": "shadow",
    }
    # Attendance is already ticked in Coachview: that write would be skipped.
    ctx: dict[str, Any] = {
        "facts": facts,
        "participation": participation(attendance=True).model_dump(mode="json"),
        "request": request().model_dump(mode="json"),
    }
    for task in WRITE_TASKS:
        result = task.apply(args=(ctx, rid))
        assert result.successful(), result.traceback
        ctx = result.get()
    rec = worker.get(rid)
    assert rec is not None and rec.state == "shadowed" and rec.last_error is None
    planned = [
        {k: v for k, v in h.items() if k != "at"}
        for h in worker.history(rid)
        if h["what"] in ("would_write", "would_skip")
    ]
    assert planned == [
        {
            "what": "would_write",
            "step": "participation",
            "writes": [
                {"field": "result", "old": None, "new": "8.5"},
                {"field": "passed", "old": False, "new": True},
            ],
        },
        {
            "what": "would_write",
            "step": "request_component",
            "writes": [
                {"field": "completed", "old": False, "new": True},
                {"field": "approved", "old": False, "new": True},
                {"field": "approval_date", "old": None, "new": "2026-11-20"},
            ],
        },
    ]
    assert worker.history(rid)[-1]["approval_date"] == "2026-11-20"
    assert worker.steps(rid) == []  # no write step counts as done


class Refusing:
    """A directory whose every look-up meets ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        def refuse(*_: Any) -> Any:
            raise self.error

        return refuse


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (Unresolved("unknown_person", "no such person"), "unknown_person"),
        (Permanent("two persons share it", code="ambiguous_person"), "ambiguous_person"),
        (RuntimeError("a bug"), "unexpected_error"),
    ],
)
def test_a_shadow_run_that_cannot_go_on_is_shadowed_and_counts_no_failure(
    worker: Ledger, monkeypatch: pytest.MonkeyPatch, error: Exception, code: str
) -> None:
    monkeypatch.setattr(resources, "directory", lambda: Refusing(error))
    rid = shadow_run(worker)
    ctx = {"facts": {"person_ref": "57", "course_ref": "12", "grade": "8.5"}}
    assert tasks.resolve.apply(args=(ctx, rid)).state == "IGNORED"
    rec = worker.get(rid)
    assert rec is not None and rec.state == "shadowed"
    assert rec.last_error is not None and rec.last_error.code == code
    assert worker.r.hgetall(FAILED_KEY) == {}
    assert worker.due_ids(T0 + timedelta(days=400)) == []


# -- the report ----------------------------------------------------------------------------------


def test_the_report_groups_shadowed_records_to_fix_and_counts_the_rest(ledger: Ledger) -> None:
    stuck = shadow_run(ledger)
    park(ledger, stuck)
    fine = shadow_run(ledger, event_id="e2", person_id="58")
    ledger.shadowed(fine, T0, "2026-11-20")
    also_fine = shadow_run(ledger, event_id="e4", person_id="60")
    ledger.shadowed(also_fine, T0, "2026-11-20")
    real = ledger.admit(event(event_id="e3", person_id="59"), T0).record.id
    ledger.delivery(real, "rest")
    ledger.start(real, T0)
    park(ledger, real)

    report = build(ledger, None, 30, AMS)
    assert report.counts["shadowed"] == 3 and report.would_deliver == 2
    [group] = report.groups
    assert (group.reason, group.count, group.shadowed, group.distinct) == (
        "unknown_person",
        2,
        1,
        2,
    )
    states = {row.state: row.days_left for row in group.rows}
    assert states == {"shadowed": 30, "unresolved": 30}


def test_a_worker_configured_for_shadow_never_writes_whatever_the_records_mode(
    worker: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    shadow_worker = Settings.model_validate({"COACHVIEW_DELIVERY": "shadow"})
    monkeypatch.setattr(resources, "settings", lambda: shadow_worker)
    rid = shadow_run(worker)
    rest = worker.get(rid)
    assert rest is not None
    rest = rest.model_copy(update={"delivery": "rest"})  # admitted by a process in rest mode
    facts = tasks._facts(rest)
    assert facts["delivery"] == "shadow"
    # The result link too: nothing is posted (NoWrites fails the test on any call).
    result = tasks.post_result_link.apply(args=({"facts": facts, "person": 1001}, rid))
    assert result.successful(), result.traceback
    after = worker.get(rid)
    assert after is not None and after.state == "shadowed"
    assert worker.history(rid)[-2]["what"] == "would_write"
