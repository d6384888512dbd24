"""Reconciliation's figures where operators look (issue 26): status's model, /metrics, doctor and
the console, for a completion only reconciliation delivered (the webhook is broken) and one a
webhook reached afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gradesync.doctor import reconcile_checks
from gradesync.event import CompletionEvent
from gradesync.reconcile.figures import figures
from gradesync.reconcile.plan import Found, event_for
from gradesync.reconcile.store import Store
from tests.unit.test_console import Console, settings

NOW = datetime.now(UTC).replace(microsecond=0)
TOKEN = "metrics-token-of-16+"


def found(console: Console, user: str, hours_ago: float, webhook: bool = False) -> str:
    at = NOW - timedelta(hours=hours_ago)
    event = event_for("default", "12", user, at)
    rid = console.ledger.admit(event, NOW, channel="reconciled").record.id
    Store(console.ledger, "moodle/default").found(rid, Found(completed=at, found=NOW))
    if webhook:
        late = CompletionEvent.model_validate(
            event.model_dump() | {"event_id": f"moodle-default-course_completed-1-{user}"}
        )
        console.ledger.admit(late, NOW, channel="moodle")
    return rid


def test_only_completions_past_the_grace_period_without_a_webhook_count() -> None:
    console = Console(GRADESYNC_METRICS_TOKEN=TOKEN)
    found(console, "1", hours_ago=30)  # missed
    found(console, "2", hours_ago=30, webhook=True)  # the webhook came, late
    found(console, "3", hours_ago=2)  # within the grace period: the cron may still send it
    (f,) = figures(console.ledger, settings(), NOW)
    assert (f.installation, f.missed_by_webhook, f.last_run) == ("moodle/default", 1, None)
    assert f.warning is not None and "webhook is not delivering" in f.warning

    scrape = console.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert 'gradesync_reconcile_missed_by_webhook{installation="moodle/default"} 1.0' in scrape.text
    assert "gradesync_reconcile_next_run_timestamp_seconds" in scrape.text

    (check,) = reconcile_checks.check(console.ledger, settings(), NOW)
    assert check.status == "warn" and "1 completion(s)" in check.detail

    console.login()
    page = console.client.get("/console/").text
    assert "Reconciliation with the LMS" in page and "1 completion(s) this week" in page


def test_a_healthy_week_shows_nothing_to_warn_about() -> None:
    console = Console()
    (check,) = reconcile_checks.check(console.ledger, settings(), NOW)
    assert check.status == "ok" and "not run yet" in check.detail
    console.login()
    assert 'role="alert">moodle/default' not in console.client.get("/console/").text


def test_status_prints_the_table_and_the_warning(capsys: pytest.CaptureFixture[str]) -> None:
    from gradesync.cli import status as cli
    from gradesync.reconcile.figures import Figures
    from gradesync.reconcile.plan import Summary

    last = Summary(installation="moodle/default", at=NOW, since=NOW, recorded=3, calls=40)
    rows = [
        Figures(
            installation="moodle/default",
            last_run=last,
            next_run=NOW,
            missed_by_webhook=2,
            grace_h=24,
        ),
        Figures(
            installation="moodle/b", last_run=None, next_run=NOW, missed_by_webhook=0, grace_h=24
        ),
    ]
    cli._print_reconciliation(rows)
    printed = capsys.readouterr()
    assert "3 recorded, 40 calls, resumes" in printed.out and "never" in printed.out
    assert "moodle/default: 2 completion(s) this week" in printed.err


def test_a_course_moodle_refused_is_a_warning_everywhere_with_the_same_count() -> None:
    from gradesync.reconcile.plan import Summary

    console = Console(GRADESYNC_METRICS_TOKEN=TOKEN)
    last = Summary(
        installation="moodle/default",
        at=NOW,
        since=NOW - timedelta(days=30),
        finished=True,
        failed_courses=["101: moodle_requireloginerror"],
    )
    Store(console.ledger, "moodle/default").remember(last)
    (f,) = figures(console.ledger, settings(), NOW)
    assert f.refused is not None and "101: moodle_requireloginerror" in f.refused
    scrape = console.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (
        'gradesync_reconcile_last_run_courses_refused{installation="moodle/default"} 1.0'
        in scrape.text
    )
    checks = reconcile_checks.check(console.ledger, settings(), NOW)
    assert [c.status for c in checks] == ["warn", "ok"]
    assert "101: moodle_requireloginerror" in checks[0].detail
    console.login()
    assert "101: moodle_requireloginerror" in console.client.get("/console/").text


def test_a_run_the_lms_broke_off_is_not_shown_as_stopped_by_the_cap() -> None:
    from gradesync.reconcile.plan import Summary

    console = Console(GRADESYNC_METRICS_TOKEN=TOKEN)
    broken = Summary(installation="moodle/default", at=NOW, since=NOW, error="timeout")
    Store(console.ledger, "moodle/default").remember(broken)
    (check,) = reconcile_checks.check(console.ledger, settings(), NOW)
    assert check.status == "warn" and "timeout" in check.detail and "cap" not in check.detail
    console.login()
    page = console.client.get("/console/").text
    assert "timeout" in page and "stopped by the call cap" not in page
