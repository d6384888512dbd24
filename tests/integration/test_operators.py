"""The operator's side against real processes: CLI actions, Flower's view of task arguments."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

from gradesync.ledger import utcnow
from gradesync.procs import wait_until
from gradesync.record import LedgerError
from tests.integration.conftest import Stack, canonical, gradesync


def test_retry_after_a_fix_and_give_up_with_reason(clean: Stack) -> None:
    clean.seed()
    rid = clean.enqueue(canonical(person_id="77", event_id="op-1"))
    assert clean.settle(rid).state == "unresolved"
    assert gradesync("retry", "op-1").returncode == 0  # not fixed yet: unresolved again
    assert clean.settle(rid).state == "unresolved"
    clean.seed(
        {
            "persons": [{"id": 1077, "externId": "77"}],
            "enrolments": [{"id": 7077, "personId": 1077, "trainingId": 501}],
        }
    )
    shown = json.loads(gradesync("retry", rid, "--json").stdout)
    assert shown["state"] == "queued"
    assert clean.settle(rid).state == "delivered"
    refused = gradesync("retry", rid)
    assert refused.returncode == 1 and "delivered" in refused.stderr

    other = clean.enqueue(canonical(person_id="78", event_id="op-2"))
    clean.settle(other)
    done = gradesync("give-up", "op-2", "--reason", "learner left the company", "--json")
    record = json.loads(done.stdout)
    assert record["state"] == "given_up"
    assert record["last_error"] == {
        "code": "operator_gave_up",
        "message": "learner left the company",
    }
    history = json.loads(gradesync("show", other, "--json").stdout)["history"]
    assert [h["what"] for h in history][-1] == "given_up"


def test_purge_removes_old_closed_records_only(clean: Stack) -> None:
    old = utcnow() - timedelta(days=400)
    ledger = clean.ledger
    gone = ledger.admit(canonical(person_id="1", event_id="old-1"), old).record.id
    ledger.start(gone, old)
    ledger.deliver(gone, old)
    stuck = ledger.admit(canonical(person_id="2", event_id="old-2"), old).record.id
    ledger.start(stuck, old)
    ledger.fail(stuck, old, LedgerError(code="http_400", message="x"))
    fresh = ledger.admit(canonical(person_id="3", event_id="new-1"), utcnow()).record.id
    ledger.start(fresh, utcnow())
    ledger.deliver(fresh, utcnow())
    result = gradesync("purge", "--older-than", "365", "--json")
    assert json.loads(result.stdout) == {"purged": 1}, result.stderr
    assert ledger.get(gone) is None and ledger.find("old-1") is None
    assert ledger.history(gone) == []
    assert ledger.get(stuck) is not None and ledger.get(fresh) is not None
    assert gradesync("purge", "--older-than", "0").returncode == 2  # rejected: min 1 day


def test_flower_sees_only_the_opaque_key_in_task_arguments(clean: Stack) -> None:
    from workers.app import app

    clean.seed()
    seen: list[dict[str, Any]] = []
    ready = threading.Event()
    receivers: list[Any] = []

    def listen() -> None:
        with app.connection() as conn:
            recv = app.events.Receiver(conn, handlers={"*": seen.append})
            receivers.append(recv)
            ready.set()
            while not recv.should_stop:
                try:
                    recv.capture(limit=None, timeout=1, wakeup=True)
                except TimeoutError:  # a quiet second: look at should_stop again
                    continue

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    ready.wait(5)
    wait_until(lambda: any(e.get("type") == "worker-heartbeat" for e in list(seen)), timeout=10)
    rid = clean.enqueue(canonical(person_id="57", grade="8.5", event_id="flower-1"))
    clean.settle(rid)

    def last_step_succeeded() -> bool:
        events = list(seen)
        last = {e["uuid"] for e in events if e.get("name") == "gradesync.write_request_component"}
        return any(e.get("type") == "task-succeeded" and e["uuid"] in last for e in events)

    wait_until(last_step_succeeded, timeout=10)
    receivers[0].should_stop = True
    thread.join(10)
    assert not thread.is_alive()

    task_events = [e for e in seen if e.get("type") in ("task-received", "task-sent")]
    assert task_events, "no task events captured"
    for event in task_events:
        shown = f"{event.get('args', '')} {event.get('kwargs', '')}"
        assert "8.5" not in shown and "57" not in shown, event
        assert event.get("name", "gradesync.").startswith("gradesync.")
    assert any(f"key={rid}" in str(e.get("args")) for e in task_events)
