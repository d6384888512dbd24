"""Both delivery modes and the daily request budget, over real processes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import timedelta

import pytest

from gradesync.ledger import utcnow
from gradesync.procs import BIN, ROOT, start_beat, wait_until
from tests.integration.conftest import Stack, canonical

ALL_ONCE = {"result": 1, "attendance": 1, "passed": 1, "completed": 1, "approved": 1}


def test_result_link_six_effects_once(clean: Stack) -> None:
    clean.seed()
    rid = clean.enqueue(canonical(), "resultlink")
    record = clean.settle(rid)
    assert record.state == "delivered", record
    assert clean.ledger.steps(rid) == ["person", "course", "result_link"]
    row = clean.component(7001, 9001)
    assert row["result"] == "8.5" and row["approvalDate"] == "2026-11-20"
    assert row["writes"] == ALL_ONCE
    routes = clean.state()["requests"]["byRoute"]
    assert routes["POST /elearning/result.aspx"] == 1
    assert "PUT /api/v1/Opleidingsvraagonderdelen/{ec_id}" not in routes


def test_result_link_first_result_wins(clean: Stack) -> None:
    clean.seed()
    rid = clean.enqueue(canonical(person_id="58", grade="9.0", event_id="bram"), "resultlink")
    assert clean.settle(rid).state == "delivered"
    row = clean.component(7002, 9001)
    assert row["result"] == "6.0" and row["writes"] == {**ALL_ONCE, "result": 0}


def test_result_link_404_is_unresolved_then_delivered_by_the_daily_pass(clean: Stack) -> None:
    clean.seed(
        {
            "persons": [{"id": 1099, "externId": "99"}],
            "trainings": [{"id": 501, "components": [{"id": 9001, "elearningCourseId": "12"}]}],
        }
    )
    rid = clean.enqueue(canonical(person_id="99", event_id="not-yet"), "resultlink")
    record = clean.settle(rid)
    assert record.state == "unresolved"
    assert record.last_error is not None and record.last_error.code == "not_enrolled"
    clean.seed({"enrolments": [{"id": 7099, "personId": 1099, "trainingId": 501}]})
    # The daily pass re-enqueues in the mode of the process that runs it: resultlink here.
    env_run = subprocess.run(
        [
            str(BIN / "gradesync"),
            "retry-due",
            "--json",
            "--as-of",
            (utcnow() + timedelta(days=1)).isoformat(),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean.env, "COACHVIEW_DELIVERY": "resultlink"},
    )
    assert json.loads(env_run.stdout) == {"requeued": 1, "given_up": 0}, env_run.stderr
    record = clean.settle(rid)
    assert record.state == "delivered" and clean.ledger.steps(rid)[-1] == "result_link"
    assert clean.component(7099, 9001)["writes"] == ALL_ONCE


def test_result_link_bad_signature_fails_with_reason(clean: Stack) -> None:
    clean.seed()
    clean.config(resultlink_secret="a-secret-gradesync-does-not-know")
    rid = clean.enqueue(canonical(), "resultlink")
    record = clean.settle(rid)
    assert record.state == "failed"
    assert record.last_error is not None and record.last_error.code == "http_403"
    assert "signature" in record.last_error.message
    assert clean.component(7001, 9001)["writes"] == dict.fromkeys(ALL_ONCE, 0)


def test_unknown_course_is_named_in_the_ledger(clean: Stack) -> None:
    clean.seed()
    rid = clean.enqueue(canonical(course_id="999", event_id="c999"), "resultlink")
    record = clean.settle(rid)
    assert record.state == "unresolved"
    assert record.last_error is not None and record.last_error.code == "unknown_course"


@pytest.fixture
def beat(clean: Stack) -> Iterator[None]:
    proc = start_beat(clean.workdir, clean.env)
    try:
        yield
    finally:
        proc.stop()
        keys = list(clean.redis.scan_iter("gs:redbeat*"))
        if keys:
            clean.redis.delete(*keys)


def test_budget_of_50_requests_and_40_completions_loses_nothing(clean: Stack, beat: None) -> None:
    n = 40
    clean.seed(
        {
            "persons": [{"id": 2000 + i, "externId": f"L{i}"} for i in range(n)],
            "trainings": [{"id": 501, "components": [{"id": 9001, "elearningCourseId": "12"}]}],
            "enrolments": [
                {"id": 8000 + i, "personId": 2000 + i, "trainingId": 501} for i in range(n)
            ],
        }
    )
    clean.config(daily_budget=50, budget_window_s=3)
    rids = [clean.enqueue(canonical(person_id=f"L{i}", event_id=f"b{i}")) for i in range(n)]

    def all_settled() -> bool:
        return all(
            (r := clean.ledger.get(rid)) is not None and r.state not in ("queued", "in_progress")
            for rid in rids
        )

    wait_until(all_settled, timeout=150, interval=0.5)
    records = [clean.ledger.get(rid) for rid in rids]
    assert [r.state for r in records if r is not None] == ["delivered"] * n
    deferred = [r for r in rids if any(h["what"] == "deferred" for h in clean.ledger.history(r))]
    assert deferred, "the budget should have made some completions wait for the reset"
    rows = [r for r in clean.state()["enrolmentComponents"] if r["enrolmentId"] >= 8000]
    assert len(rows) == n and all(r["writes"] == ALL_ONCE for r in rows)
    assert clean.state()["requests"]["rateLimited"] == 0  # stopped before the budget was spent
