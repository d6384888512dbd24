"""Moodle over HTTP (tests/fakes/lms.py) → real ingress, worker and simulator: the approval date
is when Moodle recorded the completion (issue 18), and no grade is silently lost (issue 10.4)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gradesync.procs import BIN, ROOT, free_port
from gradesync.record import Record
from tests.integration.conftest import Stack, canonical, gradesync

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
AMS = ZoneInfo("Europe/Amsterdam")  # GRADESYNC_TIMEZONE's default, the zone of the date
ALL_ONCE = {"result": 1, "attendance": 1, "passed": 1, "completed": 1, "approved": 1}
# Learners enrolled on training 501 (course "12"), one per case, next to the fixture's seed.
LEARNERS = {"70": 7070, "71": 7071, "72": 7072}
GRADED = {"graderaw": 8.5, "grademax": 10, "gradeformatted": "8,50", "completed": True}


def epoch(year: int, month: int, day: int, hour: int, minute: int) -> int:
    """Epoch seconds of a local (Amsterdam) time, as Moodle sends its times."""
    return int(datetime(year, month, day, hour, minute, tzinfo=AMS).timestamp())


def seed_learners(stack: Stack) -> None:
    stack.seed()
    stack.seed(
        {
            "persons": [
                {"id": 1000 + int(p), "externId": p, "firstName": "L", "lastName": p}
                for p in LEARNERS
            ],
            "enrolments": [
                {"id": e, "personId": 1000 + int(p), "trainingId": 501} for p, e in LEARNERS.items()
            ],
        }
    )


def webhook(user: str, fired: int, objectid: int) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        (FIXTURES / "moodle-local_webhooks-course_completed.json").read_text()
    )
    return {**body, "relateduserid": user, "timecreated": fired, "objectid": objectid}


def post(stack: Stack, body: dict[str, Any]) -> str:
    response = stack.api.post("/events/moodle", json=body)
    assert response.status_code == 202, response.text
    key: str = response.json()["key"]
    return key


def test_approval_date_is_when_moodle_recorded_the_completion(clean: Stack) -> None:
    seed_learners(clean)
    clean.lms.post(
        "/_fake/moodle",
        json={
            # completed at 23:40, the cron fired the event at 00:20 the next day
            "12/70": {
                **GRADED,
                "criteria": [epoch(2026, 11, 19, 23, 20), epoch(2026, 11, 19, 23, 40)],
            },
            # an import: completed on the 10th, the event fired five days later
            "12/71": {**GRADED, "aggregation": 2, "criteria": [epoch(2026, 11, 10, 9, 0)]},
            # Moodle gives no time: the event's timecreated, and the ledger says so
            "12/72": {**GRADED, "criteria": [None]},
        },
    )
    keys = {
        "70": post(clean, webhook("70", epoch(2026, 11, 20, 0, 20), 801)),
        "71": post(clean, webhook("71", epoch(2026, 11, 15, 3, 0), 802)),
        "72": post(clean, webhook("72", epoch(2026, 11, 20, 0, 20), 803)),
    }
    records = {p: clean.settle(k) for p, k in keys.items()}
    assert all(r.state == "delivered" for r in records.values()), records
    dates = {p: clean.component(e, 9001)["approvalDate"] for p, e in LEARNERS.items()}
    assert dates == {"70": "2026-11-19", "71": "2026-11-10", "72": "2026-11-20"}
    sources = {p: r.completed_at_source for p, r in records.items()}
    assert sources == {
        "70": "moodle_completion_criteria",
        "71": "moodle_completion_criteria",
        "72": "event",
    }
    shown = gradesync("show", keys["72"])
    assert shown.returncode == 0 and "(from event)" in shown.stdout


def test_grade_not_yet_in_moodle_waits_for_the_daily_pass(clean: Stack) -> None:
    clean.seed()
    done_at = epoch(2026, 11, 19, 23, 40)
    clean.lms.post("/_fake/moodle", json={"12/57": {"completed": True, "criteria": [done_at]}})
    rid = post(clean, webhook("57", epoch(2026, 11, 20, 0, 20), 804))
    record = clean.settle(rid)
    assert record.state == "unresolved", record
    assert record.last_error is not None and record.last_error.code == "grade_unavailable"
    assert record.next_attempt is not None
    assert clean.component(7001, 9001)["writes"]["approved"] == 0  # nothing half-written

    clean.lms.post("/_fake/moodle", json={"12/57": {**GRADED, "criteria": [done_at]}})
    retried = gradesync("retry-due", "--json", "--as-of", record.next_attempt.isoformat())
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout) == {"requeued": 1, "given_up": 0}
    assert clean.settle(rid).state == "delivered"
    row = clean.component(7001, 9001)
    assert (row["result"], row["approvalDate"], row["writes"]) == ("8.7", "2026-11-19", ALL_ONCE)


def delivered(stack: Stack, rid: str) -> Record:
    record = stack.settle(rid)
    assert record.state == "delivered", record
    return record


def test_a_later_grade_is_written_where_none_was(clean: Stack) -> None:
    clean.seed()
    first = canonical(event_id="no-grade", grade=None, completed_at="2026-11-18T10:00:00+01:00")
    rid = clean.enqueue(first)
    delivered(clean, rid)
    row = clean.component(7001, 9001)
    assert row["result"] is None and row["writes"] == {**ALL_ONCE, "result": 0}

    later = canonical(event_id="with-grade", grade="7.5", completed_at="2026-11-25T10:00:00+01:00")
    assert clean.enqueue(later) == rid
    record = delivered(clean, rid)
    row = clean.component(7001, 9001)
    # only the result is new; the ticks and the approval date are as first delivered
    assert (row["result"], row["approvalDate"], row["writes"]) == ("7.5", "2026-11-18", ALL_ONCE)
    assert record.event.completed_at == first.completed_at
    assert "grade_added" in [h["what"] for h in clean.ledger.history(rid)]

    # first result wins still: Coachview already holds 6.0 for Bram
    bram = clean.enqueue(canonical(event_id="bram-1", person_id="58", grade=None))
    delivered(clean, bram)
    clean.enqueue(canonical(event_id="bram-2", person_id="58", grade="9"))
    record = delivered(clean, bram)
    assert record.outcome == {"code": "result_kept_existing", "existing": "6.0", "new": "9"}
    assert clean.component(7002, 9001)["writes"]["result"] == 0


def test_backfill_and_enqueue_keep_original_dates(clean: Stack, tmp_path: Path) -> None:
    seed_learners(clean)
    history = tmp_path / "history.csv"
    history.write_text(
        "source,person_id,course_id,grade,completed_at\n"
        "moodle,57,12,8.0,2025-02-14T23:30:00+01:00\n"
        "moodle,58,12,7.0,2025-02-14T23:30:00Z\n"  # 00:30 in Amsterdam: the 15th
    )
    assert gradesync("backfill", str(history)).returncode == 0
    old_done = epoch(2025, 3, 1, 23, 50)
    clean.lms.post("/_fake/moodle", json={"12/70": {**GRADED, "criteria": [old_done]}})
    replay = tmp_path / "moodle.ndjson"
    replay.write_text(json.dumps(webhook("70", epoch(2025, 3, 2, 0, 10), 805)) + "\n")
    enqueued = gradesync("enqueue", "--source", "moodle", str(replay))
    assert enqueued.returncode == 0, enqueued.stdout + enqueued.stderr
    for rec in clean.ledger.newest():
        delivered(clean, rec.id)
    dates = [clean.component(e, 9001)["approvalDate"] for e in (7001, 7002, 7070)]
    assert dates == ["2025-02-14", "2025-02-15", "2025-03-01"]


def test_ingress_and_worker_refuse_to_start_when_grades_would_be_lost() -> None:
    """Moodle is in use (its secret is set) but nothing can fetch its grades: neither starts."""
    env = {**os.environ, "MOODLE_URL": "", "MOODLE_TOKEN": "", "GRADESYNC_INSECURE_DEV": ""}
    for argv in (
        [str(BIN / "gradesync"), "api", "--port", str(free_port())],
        [str(BIN / "celery"), "-A", "workers", "worker", "--pool=solo"],
    ):
        run = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
        assert run.returncode == 2, run.stderr[-2000:]
        assert "refuses to start" in run.stderr
        assert "MOODLE_URL and MOODLE_TOKEN" in run.stderr and "MOODLE_GRADE_POLICY" in run.stderr
