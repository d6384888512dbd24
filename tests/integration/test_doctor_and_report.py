"""`gradesync doctor`, `gradesync report` and the bulk retry, as subprocesses over real
processes: redis-server, the simulator (`gradesync sim`), the fake LMS, a celery worker and, for
doctor, a real beat."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gradesync.procs import Proc, free_port, start_beat, start_redis
from tests.integration.conftest import Stack, canonical, gradesync


def doctor(**env: str) -> tuple[int, dict[str, Any]]:
    done = gradesync("doctor", "--json", **env)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def statuses(found: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in found["checks"]}


@pytest.fixture
def beat(clean: Stack) -> Iterator[Proc]:
    proc = start_beat(clean.workdir, clean.env)
    try:
        yield proc
    finally:
        proc.stop()


# -- doctor ----------------------------------------------------------------------------------


def test_doctor_passes_on_the_development_stack(clean: Stack, beat: Proc) -> None:
    clean.seed()
    code, found = doctor()
    failed = [c for c in found["checks"] if c["status"] == "fail"]
    assert code == 0 and found["healthy"] and not failed, failed
    seen = statuses(found)
    for name in ("reachable", "AOF", "eviction", "memory", "worker", "beat", "queue", "token"):
        assert seen[name] == "ok", name
    reads = ("Personen", "Opleidingsonderdelen", "Opleidingsvraagonderdelen")
    for name in (*(f"read {r}" for r in reads), "read Opleidingsonderdeeluitvoeringen"):
        assert seen[name] == "ok", name
    for name in (
        "Moodle web services moodle/default",
        "ILIAS SOAP ilias/default",
        "aNewSpring API anewspring/default",
        "daily budget",
    ):
        assert seen[name] == "ok", name
    assert seen["not the simulator"] == "warn"  # allowed by GRADESYNC_INSECURE_DEV=1
    assert found["coachview_requests"] == 6  # token, example-values probe, four reads
    by_route = clean.state()["requests"]["byRoute"]
    assert sum(by_route.values()) == 6 and not [r for r in by_route if r.startswith("PUT")]


def test_doctor_names_each_broken_setting(clean: Stack) -> None:
    clean.seed()
    code, found = doctor(
        GRADESYNC_INSECURE_DEV="0",
        COACHVIEW_CLIENT_SECRET="wrong-secret",
        MOODLE_TOKEN="wrong-token",
        ANEWSPRING_API_KEY="wrong-key",
        GRADESYNC_WEBHOOK_SECRET_XAPI="short",
        # A database no worker and no beat listens on (Celery's broadcasts are per database).
        REDIS_URL=os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/7",
    )
    assert code == 1 and not found["healthy"]
    fixes = {c["name"]: c["fix"] for c in found["checks"] if c["status"] == "fail"}
    assert set(fixes) == {
        "not the simulator",
        "token",
        "worker",
        "beat",
        "Moodle web services moodle/default",
        "aNewSpring API anewspring/default",
        "webhook secret xapi/default",
    }
    assert "COACHVIEW_BASE_URL" in fixes["not the simulator"]
    assert "COACHVIEW_CLIENT_SECRET" in fixes["token"]
    assert fixes["Moodle web services moodle/default"].startswith("MOODLE_TOKEN")
    assert fixes["aNewSpring API anewspring/default"] == "ANEWSPRING_API_KEY"
    assert fixes["webhook secret xapi/default"] == "GRADESYNC_WEBHOOK_SECRET_XAPI"
    assert "celery -A workers worker" in fixes["worker"]
    assert found["coachview_requests"] == 1  # the token was refused: nothing more was asked


@pytest.mark.parametrize(
    "host_rules",
    [(), ("--rename-command", "CONFIG", "")],
    ids=["config", "config-disabled-by-the-host"],
)
def test_doctor_fails_a_redis_without_aof_that_evicts(
    tmp_path: Path, host_rules: tuple[str, ...]
) -> None:
    port = free_port()
    volatile = {"appendonly": "no", "maxmemory": "64mb", "maxmemory-policy": "allkeys-lru"}
    server = start_redis(
        port, tmp_path, dict(os.environ), volatile, host_rules, name="redis-volatile"
    )
    try:
        code, found = doctor(REDIS_URL=f"redis://127.0.0.1:{port}/0")
    finally:
        server.stop()
    assert code == 1
    checks = {c["name"]: c for c in found["checks"]}
    assert checks["AOF"]["status"] == "fail" and "appendonly yes" in checks["AOF"]["fix"]
    assert checks["eviction"]["status"] == "fail"
    assert "noeviction" in checks["eviction"]["fix"]
    assert checks["memory"]["status"] == "ok" and "of 64.0 MB" in checks["memory"]["detail"]
    assert ("CONFIG" in checks) == bool(host_rules)  # read from INFO instead, and said so


def test_doctor_prints_a_table_with_the_budget_it_spent(clean: Stack) -> None:
    clean.seed()
    done = gradesync("doctor")
    assert done.returncode == 1  # no beat in this test
    assert "✗" in done.stdout and "celery -A workers beat" in done.stdout
    assert "6 Coachview request(s) spent" in done.stdout


# -- report and bulk retry ---------------------------------------------------------------------


def test_report_groups_what_to_fix_and_bulk_retry_delivers_after_the_fix(
    clean: Stack, tmp_path: Path
) -> None:
    clean.seed()  # persons 57, 58, EXT-0093; course 12 on training 501, 312 on 502
    cases = {
        "p77": canonical(person_id="77", course_id="12", event_id="r-1"),
        "p78": canonical(person_id="78", course_id="12", event_id="r-2"),
        "course": canonical(person_id="57", course_id="999", event_id="r-3"),
        "enrol": canonical(person_id="58", course_id="312", event_id="r-4"),
    }
    rids = {name: clean.enqueue(ev) for name, ev in cases.items()}
    for rid in rids.values():
        assert clean.settle(rid).state == "unresolved"

    found = json.loads(gradesync("report", "--json").stdout)
    assert found["counts"]["unresolved"] == 4
    groups = {g["reason"]: g for g in found["groups"]}
    assert list(groups) == ["unknown_person", "unknown_course", "not_enrolled"]
    assert (groups["unknown_person"]["count"], groups["unknown_person"]["distinct"]) == (2, 2)
    assert groups["unknown_person"]["oldest_completion"] == "2026-11-20"
    assert groups["unknown_person"]["days_left"] == 30
    assert {r["person_id"] for r in groups["unknown_person"]["rows"]} == {"77", "78"}
    assert [(r["person_id"], r["course_id"]) for r in groups["not_enrolled"]["rows"]] == [
        ("58", "312")
    ]

    sheet = tmp_path / "to-fix.csv"
    assert gradesync("report", "--csv", str(sheet)).returncode == 0
    rows = list(csv.DictReader(sheet.open(encoding="utf-8")))
    assert sorted((r["group"], r["person_id"], r["course_id"]) for r in rows) == [
        ("not_enrolled", "58", "312"),
        ("unknown_course", "57", "999"),
        ("unknown_person", "77", "12"),
        ("unknown_person", "78", "12"),
    ]
    assert {r["days_left"] for r in rows} == {"30"}

    clean.seed(
        {
            "persons": [{"id": 1077, "externId": "77"}, {"id": 1078, "externId": "78"}],
            "enrolments": [
                {"id": 7077, "personId": 1077, "trainingId": 501},
                {"id": 7078, "personId": 1078, "trainingId": 501},
            ],
        }
    )
    done = gradesync("retry", "--state", "unresolved", "--reason", "unknown_person", "--json")
    assert json.loads(done.stdout) | {"ids": None} == {
        "matched": 2,
        "queued": 2,
        "skipped": 0,
        "unreadable": 0,
        "ids": None,
    }, done.stderr
    for name in ("p77", "p78"):
        assert clean.settle(rids[name]).state == "delivered"
    for name in ("course", "enrol"):  # not matched: untouched
        record = clean.ledger.get(rids[name])
        assert record is not None and record.state == "unresolved" and record.attempts == 1

    clean.seed({"enrolments": [{"id": 7092, "personId": 1002, "trainingId": 502}]})
    done = gradesync("retry", "--state", "unresolved", "--person", "58")
    assert done.returncode == 0 and "queued 1 of 1 matching unresolved" in done.stdout
    assert clean.settle(rids["enrol"]).state == "delivered"
    after = json.loads(gradesync("report", "--json").stdout)
    assert [(g["reason"], g["count"]) for g in after["groups"]] == [("unknown_course", 1)]
    assert gradesync("retry", rids["course"]).returncode == 0  # one KEY still works
    assert gradesync("retry").returncode == 2  # neither a KEY nor --state
