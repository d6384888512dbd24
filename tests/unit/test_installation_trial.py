"""What a hostile trial of the sources file (issue 16, several installations) found: records
waiting on an installation, the sources file's own checks, the ingress's refusals."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import fakeredis
import pytest

from gradesync.held import release_held
from gradesync.ledger import Ledger, utcnow
from gradesync.record import LedgerError
from gradesync.report import build
from tests.unit.test_sources import env, record, settings_for, two_moodles, write
from workers import resources, tasks

__all__ = ["env"]  # the fixture, used by name


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Ledger:
    ledger = Ledger(fakeredis.FakeRedis())
    monkeypatch.setattr(resources, "ledger", lambda: ledger)
    return ledger


def test_a_record_of_an_installation_the_worker_does_not_know_waits(
    tmp_path: Path, env: dict[str, str], ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingress restarted with a new installation before the workers: the record waits
    (queued, no attempt spent, a visible code), is in the report with what to fix, and a worker
    that knows the installation releases it at once."""
    old = settings_for(write(tmp_path, two_moodles()[:1]))  # the worker knows staff only
    monkeypatch.setattr(resources, "settings", lambda: old)
    rid = ledger.admit(record("acme").event, utcnow()).record.id

    assert tasks.fetch_from_lms.apply(args=(rid,)).state == "IGNORED"

    held = ledger.get(rid)
    assert held is not None and held.state == "queued" and held.attempts == 0
    assert held.last_error is not None and held.last_error.code == "unknown_installation"
    assert "restart the workers" in held.last_error.message
    report = build(ledger, None, 5, old.tz)
    [group] = report.groups
    assert group.reason == "unknown_installation" and group.count == 1
    assert "restart the workers" in group.what_to_fix
    assert ledger.take_deferred(utcnow()) == []  # not due before the recheck...

    new = settings_for(write(tmp_path, two_moodles()))
    assert release_held(ledger, old.sources, utcnow()) == []  # ...nor by a worker still old
    assert release_held(ledger, new.sources, utcnow()) == [rid]
    assert ledger.take_deferred(utcnow() + timedelta(seconds=1)) == [rid]


def test_a_re_enabled_installations_records_are_released_when_a_worker_starts(
    tmp_path: Path, env: dict[str, str], ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    off = settings_for(write(tmp_path, two_moodles(enabled=False)))
    monkeypatch.setattr(resources, "settings", lambda: off)
    rid = ledger.admit(record("acme").event, utcnow()).record.id
    assert tasks.fetch_from_lms.apply(args=(rid,)).state == "IGNORED"
    tasks._release_held()
    assert ledger.take_deferred(utcnow()) == []

    on = settings_for(write(tmp_path, two_moodles()))
    monkeypatch.setattr(resources, "settings", lambda: on)
    tasks._release_held()  # what worker_ready runs
    assert ledger.take_deferred(utcnow() + timedelta(seconds=1)) == [rid]


def test_the_report_shows_failed_records(
    tmp_path: Path, env: dict[str, str], ledger: Ledger
) -> None:
    s = settings_for(write(tmp_path, two_moodles()))
    rid = ledger.admit(record("acme").event, utcnow()).record.id
    ledger.start(rid, utcnow())
    ledger.fail(rid, utcnow(), LedgerError(code="lms_api_not_configured", message="m"))
    [group] = build(ledger, None, 5, s.tz).groups
    assert group.reason == "lms_api_not_configured" and group.count == 1
