"""Every (state × input) pair of the ledger's rules, without Redis: what each event, pipeline
outcome or operator command does to a record in each state. ``-`` means the record is left as
it is; an exception name means the input is refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gradesync import transitions as t
from gradesync.event import CompletionEvent
from gradesync.record import STATES, LedgerError, Record
from tests.unit.test_ledger import event

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
ERR = LedgerError(code="unknown_person", message="no such person")
AMS = ZoneInfo("Europe/Amsterdam")
LATER: CompletionEvent = event(event_id="e2", grade="9")
FAILED: CompletionEvent = event(event_id="e3", grade="4.2")

Input = Callable[[Record | None], tuple[t.Change, Any]]
INPUTS: dict[str, Input] = {
    "admit another event": lambda o: t.admit(o, "r", LATER, T0, (), ("e2", "s", "r d")),
    "admit the same event": lambda o: t.admit(o, "r", event(), T0, (), ("e1", "s", "r d")),
    "start": lambda o: t.start(o, T0),
    "deliver": lambda o: t.close(o, T0, "delivered", None),
    "fail": lambda o: t.close(o, T0, "failed", ERR),
    "give up (retries spent)": lambda o: t.close(o, T0, "given_up", ERR),
    "unresolved": lambda o: t.unresolved(o, T0, ERR, 30, time(3), AMS),
    "defer": lambda o: t.defer(o, T0, T0 + timedelta(hours=1), ERR),
    "shadow run done": lambda o: t.shadowed(o, T0, "2026-11-20"),
    "operator retry": lambda o: t.retry_now(o, "r", T0, ""),
    "operator give-up": lambda o: t.give_up_now(o, "r", T0, "why", ""),
    "daily pass takes it": lambda o: t.requeue_due(o, T0, T0, 30),
    "stalled": lambda o: t.restall(o, T0, 3),
    "not passed (xAPI failed)": lambda o: t.not_passed(o, "r", FAILED, T0, ("e3", "s", "r d")),
    "voided (xAPI voiding)": lambda o: t.withdraw(o, T0, "statement-id"),
}

# Columns: no record yet, then each state in STATES order. Q queued, P in_progress,
# D delivered, U unresolved, G given_up, F failed, S shadowed, N not_passed, W withdrawn;
# "-" left as it is;
# L! and V! refused with LookupError / ValueError.
COLUMNS = (None, *STATES)
CODES = {"Q": "queued", "P": "in_progress", "D": "delivered", "U": "unresolved"}
CODES |= {"G": "given_up", "F": "failed", "S": "shadowed", "-": "-"}
CODES |= {"N": "not_passed", "W": "withdrawn"}
CODES |= {"L!": "LookupError", "V!": "ValueError"}
TABLE: dict[str, str] = {
    #                            None Q   P   D   U   G   F   S   N   W
    "admit another event": "Q    Q   P   D   Q   Q   Q   Q   Q   Q",
    "admit the same event": "Q    -   -   -   -   -   -   -   -   -",
    "start": "-    P   -   -   -   -   -   -   -   -",
    "deliver": "-    D   D   -   D   D   D   D   D   D",
    "fail": "-    F   F   -   -   -   -   -   -   -",
    "give up (retries spent)": "-    G   G   -   -   -   -   -   -   -",
    "unresolved": "-    U   U   -   -   -   -   -   -   -",
    "defer": "-    Q   Q   -   -   -   -   -   -   -",
    "shadow run done": "-    S   S   -   -   -   -   -   -   -",
    "operator retry": "L!   V!  V!  V!  Q   Q   Q   Q   V!  V!",
    "operator give-up": "L!   G   G   V!  G   V!  G   G   G   G",
    "daily pass takes it": "-    -   -   -   Q   -   -   -   -   -",
    "stalled": "-    Q   Q   -   -   -   -   -   -   -",
    # A fail never undoes a recorded pass; a voiding withdraws what is not delivered, and
    # leaves a delivered record delivered (with a note for an operator).
    "not passed (xAPI failed)": "N    -   -   -   -   -   -   -   N   N",
    "voided (xAPI voiding)": "-    W   W   D   W   W   W   W   W   -",
}


def record(state: str | None) -> Record | None:
    if state is None:
        return None
    return Record(
        id="r",
        event=event(),
        state=state,
        first_seen=T0,
        updated=T0,
        next_attempt=T0 - timedelta(hours=1) if state == "unresolved" else None,
        last_error=ERR if state in ("unresolved", "failed", "given_up") else None,
    )


def outcome(rule: Input, old: Record | None) -> str:
    try:
        change, _ = rule(old)
    except (LookupError, ValueError) as exc:
        return type(exc).__name__
    return "-" if change.record is None else change.record.state


def test_the_table_covers_every_input_and_state() -> None:
    assert set(TABLE) == set(INPUTS)
    assert all(len(row.split()) == len(COLUMNS) for row in TABLE.values())


@pytest.mark.parametrize(("name", "state"), [(name, state) for name in INPUTS for state in COLUMNS])
def test_each_input_in_each_state(name: str, state: str | None) -> None:
    expected = CODES[TABLE[name].split()[COLUMNS.index(state)]]
    assert outcome(INPUTS[name], record(state)) == expected


def test_a_shadow_run_ends_shadowed_where_a_real_one_would_fail_or_wait() -> None:
    running = record("in_progress")
    assert running is not None
    shadow = running.model_copy(update={"delivery": "shadow"})
    failed, state = t.close(shadow, T0, "failed", ERR)
    assert state == "shadowed" and failed.record is not None
    assert failed.record.last_error == ERR
    parked, state = t.unresolved(shadow, T0, ERR, 30, time(3), AMS)
    assert state == "shadowed" and parked.record is not None
    assert parked.record.next_attempt is None  # no daily retry: the window starts later


def test_starting_delivery_after_shadow_resets_the_counters_and_the_mode() -> None:
    done = record("shadowed")
    assert done is not None
    shadowed = done.model_copy(update={"attempts": 2, "daily_retries": 1, "delivery": "shadow"})
    change, rec = t.retry_now(shadowed, "r", T0, "ops")
    assert (rec.attempts, rec.daily_retries, rec.delivery) == (0, 0, None)
    assert change.outbox and change.history[0]["by"] == "ops"


def test_a_run_that_started_counts_an_attempt_and_a_redelivery_does_not() -> None:
    _, started = t.start(record("queued"), T0)
    assert started is not None and started.attempts == 1 and started.last_attempt == T0
    again, same = t.start(started, T0 + timedelta(seconds=5))
    assert again.record is None and same is started
