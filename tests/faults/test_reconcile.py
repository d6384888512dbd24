"""Reconciliation over real processes (issue 26): a fake Moodle site completes learners while the
ingress is down and loses one webhook on purpose; ``gradesync reconcile`` finds them, the worker
delivers each once with Moodle's own date, and a webhook arriving afterwards writes nothing."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from gradesync import keys
from gradesync.procs import BIN, Proc, free_port, wait_until
from tests.faults.conftest import Workers
from tests.faults.test_faults import ALL_ONCE
from tests.integration.conftest import Stack, gradesync

COURSES = {201: "VCA-1", 202: "VCA-2"}
LEARNERS = [5001, 5002, 5003, 5004]
TOKEN = "reconcile-fake-moodle-token"


class Site:
    """The fake Moodle site process and the ingress it posts its webhooks to."""

    def __init__(self, workdir: Path, env: dict[str, str], delay_ms: int = 0) -> None:
        self.port, self.api_port = free_port(), free_port()
        self.env = env | {
            "MOODLE_URL": f"http://127.0.0.1:{self.port}",
            "MOODLE_TOKEN": TOKEN,
            "MOODLE_PERSON_FIELD": "id",
            "MOODLE_COURSE_FIELD": "idnumber",
            "MOODLE_GRADE_POLICY": "fetch",
            "MOODLE_GRADE_FORMAT": "formatted",
        }
        self.workdir = workdir
        self.proc = Proc(
            "moodle-site",
            [
                sys.executable,
                "-m",
                "tests.fakes.moodle_site",
                "--port",
                str(self.port),
                "--token",
                TOKEN,
                "--delay-ms",
                str(delay_ms),
            ],
            workdir,
            self.env,
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        wait_until(lambda: self.http.get("/_site/calls").is_success)
        self.ingress: Proc | None = None

    def start_ingress(self) -> None:
        self.ingress = Proc(
            "reconcile-api",
            [str(BIN / "gradesync"), "api", "--port", str(self.api_port)],
            self.workdir,
            self.env,
        )
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{self.api_port}/healthz").is_success)

    def stop_ingress(self) -> None:
        assert self.ingress is not None
        self.ingress.stop()
        self.ingress = None

    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/events/moodle"

    def complete(
        self, course: int, user: int, at: datetime, webhook: bool = True
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"course": course, "user": user, "at": int(at.timestamp())}
        if webhook:
            body["webhook"] = self.webhook_url()
        answer: dict[str, Any] = (
            self.http.post("/_site/complete", json=body).raise_for_status().json()
        )
        return answer

    def stop(self) -> None:
        if self.ingress is not None:
            self.ingress.stop()
        self.proc.stop()


@pytest.fixture
def site(clean: Stack, tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path, clean.env)
    try:
        for course, idnumber in COURSES.items():
            s.http.post(
                "/_site/course", json={"id": course, "idnumber": idnumber, "learners": LEARNERS}
            ).raise_for_status()
        yield s
    finally:
        s.stop()


def coachview_seed() -> dict[str, Any]:
    """Every learner enrolled on a training with both e-learning components."""
    return {
        "persons": [{"id": 7000 + n, "externId": str(u)} for n, u in enumerate(LEARNERS)],
        "trainings": [
            {
                "id": 801,
                "name": "VCA",
                "components": [
                    {"id": 9100 + c, "name": code, "elearningCourseId": code}
                    for c, code in COURSES.items()
                ],
            }
        ],
        "enrolments": [
            {"id": 8000 + n, "personId": 7000 + n, "trainingId": 801} for n in range(len(LEARNERS))
        ],
    }


def reconcile(site: Site, *args: str) -> dict[str, Any]:
    done = gradesync(
        "reconcile", "--installation", "moodle/default", "--json", *args, **_only(site)
    )
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def _only(site: Site) -> dict[str, str]:
    return {k: v for k, v in site.env.items() if k.startswith("MOODLE_")}


def test_reconciliation_delivers_what_no_webhook_did_once_with_moodles_date(
    clean: Stack, workers: Workers, site: Site
) -> None:
    clean.seed(coachview_seed())
    workers.start(concurrency=2, **_only(site))
    # Completed 30 hours ago (within the first window, past the 24-hour grace period).
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=30)
    site.start_ingress()
    assert site.complete(201, 5001, at)["delivered"]  # the webhook works
    site.stop_ingress()  # a deploy: every webhook in this window is lost for good
    assert not site.complete(201, 5002, at + timedelta(minutes=1))["delivered"]
    late = site.complete(202, 5003, at + timedelta(minutes=2))
    assert not late["delivered"]
    site.start_ingress()
    site.complete(202, 5004, at + timedelta(minutes=3), webhook=False)  # lost on purpose
    # A learner completed and then left the course (suspended) before reconciliation ran.
    site.complete(202, 5001, at + timedelta(minutes=4), webhook=False)
    site.http.post("/_site/leave", json={"course": 202, "user": 5001, "how": "suspend"})

    summary = reconcile(site)
    assert (summary["recorded"], summary["left"], summary["finished"]) == (3, 1, True)
    assert summary["courses"] == 2 and summary["unknown_courses"] == 0

    expected = {
        (5001, 201): at,
        (5002, 201): at + timedelta(minutes=1),
        (5003, 202): at + timedelta(minutes=2),
        (5004, 202): at + timedelta(minutes=3),
    }

    def delivered() -> list[dict[str, Any]] | None:
        rows = [r for r in clean.state()["enrolmentComponents"] if r["writes"].get("completed")]
        return rows if len(rows) == len(expected) else None

    rows = wait_until(delivered, timeout=90, interval=0.5)
    tz = ZoneInfo("Europe/Amsterdam")
    by_key = {(r["personId"], r["componentId"]): r for r in rows}
    for (user, course), when in expected.items():
        row = by_key[(7000 + LEARNERS.index(user), 9100 + course)]
        assert row["writes"] == ALL_ONCE, row
        assert row["approvalDate"] == when.astimezone(tz).date().isoformat()
    rec = clean.ledger.find("moodle|default|5003|202")
    assert rec is not None and rec.state == "delivered"
    assert "reconciled" in [h["what"] for h in clean.ledger.history(rec.id)]

    # The webhook Moodle's cron sent late arrives now: nothing is written, a note is left.
    answer = httpx.post(site.webhook_url(), json=late["webhook"], timeout=10)
    assert answer.status_code in (200, 202), answer.text
    clean.wait_idle()
    assert [h["what"] for h in clean.ledger.history(rec.id)][-1] == "later_event_ignored"
    after = {
        (r["personId"], r["componentId"]): r["writes"] for r in clean.state()["enrolmentComponents"]
    }
    assert after[(7000 + LEARNERS.index(5003), 9302)] == ALL_ONCE

    # A second run finds nothing new; status shows the two completions no webhook delivered.
    assert reconcile(site)["recorded"] == 0
    status = gradesync("status", "--json", **_only(site))
    figures = json.loads(status.stdout)["reconciliation"]
    assert [(f["installation"], f["missed_by_webhook"]) for f in figures] == [("moodle/default", 2)]
    metrics = httpx.get(f"http://127.0.0.1:{site.api_port}/metrics", timeout=10).text
    assert 'gradesync_reconcile_missed_by_webhook{installation="moodle/default"} 2.0' in metrics
    assert 'gradesync_reconcile_last_run_finished{installation="moodle/default"} 1.0' in metrics


def test_one_run_at_a_time_and_the_beat_task_runs_on_a_worker(
    clean: Stack, workers: Workers, site: Site
) -> None:
    from gradesync.reconcile.store import Store
    from workers.app import app

    clean.seed(coachview_seed())
    workers.start(concurrency=1, **_only(site))
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    site.complete(201, 5002, at, webhook=False)
    store = Store(clean.ledger, "moodle/default")
    lock = store.lock()
    assert lock.acquire()
    try:
        busy = gradesync("reconcile", "--installation", "moodle/default", **_only(site))
        assert busy.returncode == 1 and "another reconciliation run" in busy.stderr
    finally:
        lock.release()
    # What beat sends each night, taken by the worker (its own MOODLE_* environment).
    app.send_task("gradesync.reconcile", args=("moodle", "default"))
    last = wait_until(store.last, timeout=60, interval=0.5)
    assert last.recorded == 1 and last.finished
    rec = clean.settle(clean.ledger.find("moodle|default|5002|201").id)  # type: ignore[union-attr]
    assert rec.state == "delivered" and rec.event.completed_at == at


def test_a_run_killed_with_minus_9_resumes_with_nothing_lost_or_recorded_twice(
    clean: Stack, tmp_path: Path
) -> None:
    from gradesync.reconcile.store import Store

    slow = Site(tmp_path, clean.env, delay_ms=150)
    try:
        learners = list(range(6001, 6013))
        for course in (301, 302, 303):
            slow.http.post(
                "/_site/course",
                json={"id": course, "idnumber": f"K-{course}", "learners": learners},
            ).raise_for_status()
        at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
        done = {(c, u) for c in (301, 302, 303) for u in (6003, 6010)}
        for course, user in sorted(done):
            slow.complete(course, user, at, webhook=False)
        env = os.environ | _only(slow) | {"GRADESYNC_SOURCES": str(kill_sources(tmp_path, slow))}
        run = Proc(
            "reconcile-killed",
            [str(BIN / "gradesync"), "reconcile", "--installation", "moodle/default"],
            tmp_path,
            env,
        )
        store = Store(clean.ledger, "moodle/default")

        def progressed() -> bool:
            current = store.state().current
            return current is not None and "301" in current.done

        wait_until(progressed, timeout=60, interval=0.05)
        run.kill9()
        # What was answered is stored, and the lock frees itself within minutes, not hours.
        assert "301" in store.state().current.done  # type: ignore[union-attr]
        assert 0 < clean.ledger.r.pttl(keys.reconcile("moodle/default", "lock")) <= 5 * 60_000
        clean.ledger.r.delete(keys.reconcile("moodle/default", "lock"))  # its 5 minutes, passed
        again = gradesync(
            "reconcile",
            "--installation",
            "moodle/default",
            "--json",
            **{k: v for k, v in env.items() if k.startswith(("MOODLE_", "GRADESYNC_SOURCES"))},
        )
        assert again.returncode == 0, again.stderr
        summary = json.loads(again.stdout)
        assert summary["finished"] and summary["courses_done"] == 3
        found = {
            (c, u)
            for c in (301, 302, 303)
            for u in learners
            if clean.ledger.find(f"moodle|default|{u}|{c}") is not None
        }
        assert found == done
        for course, user in done:
            rec = clean.ledger.find(f"moodle|default|{user}|{course}")
            assert rec is not None and rec.event.completed_at == at
            whats = [h["what"] for h in clean.ledger.history(rec.id)]
            assert (whats.count("received"), whats.count("reconciled")) == (1, 1), whats
    finally:
        slow.stop()


def kill_sources(tmp_path: Path, site: Site) -> Path:
    """The installation with its courses listed (no Coachview read needed)."""
    path = tmp_path / "sources.yaml"
    path.write_text(
        "installations:\n"
        "  - kind: moodle\n"
        "    instance: default\n"
        "    secret: a-webhook-secret-of-32-characters!\n"
        f"    api: {{url: 'http://127.0.0.1:{site.port}', credential: {TOKEN}}}\n"
        "    course_field: idnumber\n"
        "    reconcile: {courses: [K-301, K-302, K-303]}\n"
    )
    return path
