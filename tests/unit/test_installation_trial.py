"""What a hostile trial of the sources file (issue 16, several installations) found: records
waiting on an installation, the sources file's own checks, the ingress's refusals."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import fakeredis
import pytest
import respx
from prometheus_client import REGISTRY
from pydantic import ValidationError
from rich.console import Console
from structlog.testing import capture_logs
from typer.testing import CliRunner, Result

from gradesync import cli, demo, metrics, sources_file
from gradesync import settings as settings_module
from gradesync.doctor import lms_checks
from gradesync.held import release_held
from gradesync.ledger import AmbiguousEventId, Ledger, utcnow
from gradesync.record import LedgerError
from gradesync.report import build
from gradesync.settings import Settings
from gradesync.stack import dev_notes
from producers.api import create_app
from tests.unit.test_ingress import METRICS_TOKEN, App
from tests.unit.test_sources import WHSEC, Ingress, env, record, settings_for, two_moodles, write
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
    assert group.days_left == 5  # it spends no daily retry while it waits (it read 0)
    assert "restart the workers" in group.what_to_fix
    assert ledger.take_deferred(utcnow()) == []  # not due before the recheck...

    new = settings_for(write(tmp_path, two_moodles()))
    assert release_held(ledger, old.sources, utcnow()).ids == []  # ...nor by a worker still old
    assert release_held(ledger, new.sources, utcnow()).ids == [rid]
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


def run_cli(monkeypatch: pytest.MonkeyPatch, path: Path | str, *args: str) -> Result:
    monkeypatch.setenv("GRADESYNC_SOURCES", str(path))
    settings_module.get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli.app, list(args))
    finally:
        settings_module.get_settings.cache_clear()


def test_a_fetch_policy_without_an_api_is_a_problem_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reported with the file's other problems, with its line, by every command (status too),
    saying "(the default)" only when the file does not say fetch."""
    path = tmp_path / "s.yaml"
    path.write_text(
        "installations:\n"  # 1
        "  - kind: moodle\n"  # 2
        "    secret: a-moodle-token-of-16\n"  # 3
        "    grade_policy: fetch\n"  # 4
        "  - kind: anewspring\n"  # 5
        "    instance: north\n"  # 6
        "    secret: an-academy-hmac-key-0001\n"  # 7
        "  - kind: ilias\n"  # 8
        "    timezone: Mars/Olympus\n"  # 9
    )
    result = run_cli(monkeypatch, path, "status")
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert lines[1:] == [
        f"  {path}:4: installations[0].grade_policy: fetch needs api (url and credential) to "
        "fetch the grade moodle's completion event lacks: add api, or set grade_policy "
        "completion_only",
        f"  {path}:5: installations[1].grade_policy: fetch (the default) needs api (url and "
        "credential) to fetch the grade anewspring's completion event lacks: add api, or set "
        "grade_policy event or completion_only",
        f"  {path}:8: installations[2].secret_env: a webhook secret is needed: secret_env "
        "(preferred) or secret",
        f"  {path}:9: installations[2].timezone: unknown time zone 'Mars/Olympus' (an IANA "
        "name, e.g. Europe/Amsterdam)",
    ]


@pytest.fixture
def own_collector() -> Iterator[None]:
    """The shared collector reads the first ledger scraped: this test's must not be the one
    another test's scrape then reads."""
    before = metrics._collector
    yield
    if before is None and metrics._collector is not None:
        REGISTRY.unregister(metrics._collector)
        metrics._collector = None


@pytest.mark.usefixtures("own_collector")
def test_metrics_need_a_token_outside_development() -> None:
    """/metrics names every installation: a bearer token, or nothing outside development."""
    closed = App(GRADESYNC_METRICS_TOKEN=None).client.get("/metrics")
    assert closed.status_code == 403 and "GRADESYNC_METRICS_TOKEN" in closed.text
    assert "installation=" not in closed.text
    guarded = App().client
    for header in ({}, {"authorization": "Bearer wrong"}, {"authorization": METRICS_TOKEN}):
        answer = guarded.get("/metrics", headers=header)
        assert answer.status_code == 401 and "installation=" not in answer.text
    ok = guarded.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
    assert ok.status_code == 200 and "gradesync_ledger_records" in ok.text
    dev = App(GRADESYNC_METRICS_TOKEN=None, GRADESYNC_INSECURE_DEV="1").client.get("/metrics")
    assert dev.status_code == 200


def test_a_short_metrics_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(GRADESYNC_METRICS_TOKEN="short")


def test_an_operator_releases_waiting_records_and_sees_disabled_installations(
    tmp_path: Path, env: dict[str, str], ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    off_path = tmp_path / "off"
    off_path.mkdir()
    off = settings_for(write(off_path, two_moodles(enabled=False)))
    monkeypatch.setattr(resources, "settings", lambda: off)
    rid = ledger.admit(record("acme").event, utcnow()).record.id
    assert tasks.fetch_from_lms.apply(args=(rid,)).state == "IGNORED"

    listed = run_cli(monkeypatch, off.sources_path or "", "list")
    assert "disabled (enabled: false): moodle/acme" in listed.output
    refused = run_cli(monkeypatch, off.sources_path or "", "retry", "--state", "queued")
    assert refused.exit_code == 0 and "1 still held" in refused.output
    assert ledger.take_deferred(utcnow()) == []
    wrong = ("retry", "--state", "queued", "--reason", "unknown_person")
    assert run_cli(monkeypatch, off.sources_path or "", *wrong).exit_code == 2

    on = write(tmp_path, two_moodles())
    reason = ("--reason", "installation_disabled")
    released = run_cli(monkeypatch, on, "retry", "--state", "queued", *reason)
    assert released.exit_code == 0 and "released 1 waiting record(s)" in released.output
    assert "disabled (enabled: false)" not in run_cli(monkeypatch, on, "list").output
    assert ledger.take_deferred(utcnow() + timedelta(seconds=1)) == [rid]


def problems_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(sources_file.SourcesError) as info:
        sources_file.load(str(path), env or {})
    assert "do-not-show" not in str(info.value)
    return [p.removeprefix(f"{path}:") for p in info.value.problems]


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("do-not-show", "is too short"),
        ("whsec_do-not-show!", "must be base64"),
        ("' do-not-show-me-sixteen'", "whitespace"),
    ],
)
def test_a_literal_secrets_problem_names_secret_and_its_line(
    tmp_path: Path, secret: str, problem: str
) -> None:
    text = f"installations:\n  - kind: xapi\n    instance: lrs\n    secret: {secret}\n"
    [line] = problems_of(tmp_path, text)
    assert line.startswith("4: installations[0].secret: ") and problem in line


def test_empty_or_padded_credentials_are_refused_like_secrets(tmp_path: Path) -> None:
    text = (
        "installations:\n"  # 1
        "  - kind: moodle\n"  # 2
        "    secret: a-moodle-token-of-16\n"  # 3
        "    api: {url: 'https://m.test', credential: ''}\n"  # 4
        "  - kind: anewspring\n"  # 5
        "    secret_env: PADDED_SECRET\n"  # 6
        "    api:\n"  # 7
        "      url: https://a.test\n"  # 8
        "      credential_env: PADDED_KEY\n"  # 9
    )
    env = {"PADDED_SECRET": " do-not-show-me-sixteen ", "PADDED_KEY": "do-not-show\n"}
    assert problems_of(tmp_path, text, env) == [
        "4: installations[0].api.credential: is empty",
        "6: installations[1].secret_env: environment variable PADDED_SECRET (the webhook "
        "secret) has whitespace around it (a copy-paste slip?)",
        "9: installations[1].api.credential_env: environment variable PADDED_KEY (the API "
        "credential) has whitespace around it (a copy-paste slip?)",
    ]


def test_refusals_are_logged_without_what_the_caller_sent(
    tmp_path: Path, env: dict[str, str]
) -> None:
    ingress = Ingress(write(tmp_path, two_moodles(enabled=False)))
    with capture_logs() as logged:
        unknown = ingress.moodle("/events/moodle/made-up-name", "do-not-show-token", userid="57")
        disabled = ingress.moodle("/events/moodle/acme", env["ACME_TOKEN"])
        forged = ingress.moodle("/events/moodle/staff", "do-not-show-token")
        invalid = ingress.moodle("/events/moodle/staff", env["STAFF_TOKEN"], relateduserid="")
    statuses = [a.status_code for a in (unknown, disabled, forged, invalid)]
    assert statuses == [404, 503, 401, 422]
    refused = [e for e in logged if e["event"] == "refused"]
    assert [(e["installation"], e["status"], e["error"]) for e in refused] == [
        ("unknown", 404, "unknown_installation"),
        ("moodle/acme", 503, "installation_disabled"),
        ("moodle/staff", 401, "unauthenticated"),
        ("moodle/staff", 422, "invalid"),
    ]
    assert all(e["route"] == "moodle" for e in refused)
    text = str(logged)
    assert "do-not-show" not in text and "made-up-name" not in text and "'57'" not in text


@pytest.mark.parametrize("name", ["x" * 20_000, "acme\u200b", "ac\x00me"])
def test_an_unknown_instance_is_not_echoed_back(
    tmp_path: Path, env: dict[str, str], name: str
) -> None:
    ingress = Ingress(write(tmp_path, two_moodles()))
    answer = ingress.moodle(f"/events/moodle/{quote(name)}", env["STAFF_TOKEN"])
    assert answer.status_code in (404, 400) and answer.json()["error"] != "internal"
    assert len(answer.content) < 400
    # Escaped, so an operator reading it sees what was sent.
    detail = str(answer.json()["detail"])
    assert "\u200b" not in detail and "\x00" not in detail


def test_a_sources_path_that_is_no_small_regular_file_is_refused_at_once(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * sources_file.MAX_BYTES + "\n")
    # A FIFO: test_sources_file.py, which fails instead of hanging when its open blocks.
    for path, problem in (
        ("/dev/zero", "not a regular file"),
        (str(tmp_path), "not a regular file"),
        (str(big), "larger than 1024 KiB"),
    ):
        with pytest.raises(sources_file.SourcesError) as info:
            sources_file.load(path, {})
        assert info.value.problems == [f"{path}: {problem}"]


def test_two_installations_sharing_a_webhook_secret_are_refused(tmp_path: Path) -> None:
    text = (
        "installations:\n"  # 1
        "  - kind: moodle\n"  # 2
        "    instance: staff\n"  # 3
        "    secret: do-not-show-me-sixteen\n"  # 4
        "    grade_policy: completion_only\n"  # 5
        "  - kind: moodle\n"  # 6
        "    instance: acme\n"  # 7
        "    secret_env: ACME\n"  # 8
        "    grade_policy: completion_only\n"  # 9
        "  - kind: xapi\n"  # 10
        "    secret_env: ACME\n"  # 11
    )
    shared = "do-not-show-me-sixteen"
    assert problems_of(tmp_path, text, {"ACME": shared}) == [
        f"{line}: installations[{n}].secret_env: is the webhook secret of installations[0] "
        "(moodle/staff) too: give each installation its own (a shared one lets either's "
        "signature pass on the other's route)"
        for line, n in ((8, 1), (11, 2))
    ]


def test_per_kind_variables_a_sources_file_makes_unread_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At start-up (log) and in doctor; a variable the file names is read, so not named."""
    path = write(
        tmp_path,
        [
            {
                "kind": "moodle",
                "secret_env": "GRADESYNC_WEBHOOK_SECRET_MOODLE",
                "grade_policy": "completion_only",
            },
            {"kind": "xapi", "secret": WHSEC},
        ],
    )
    for name, value in {
        "GRADESYNC_WEBHOOK_SECRET_MOODLE": "a-moodle-token-of-16",
        "MOODLE_URL": "https://moodle.test",
        "MOODLE_TOKEN": "do-not-show-token",
        "ILIAS_TIMEZONE": "",  # empty: as if unset
    }.items():
        monkeypatch.setenv(name, value)
    s = settings_for(path)
    with capture_logs() as logged:
        create_app(Ledger(fakeredis.FakeRedis()), lambda _: None, s)
    [note] = [e for e in logged if e["event"] == "variables_not_read"]
    # (the test session may set others of them: only these are this test's)
    assert {"MOODLE_TOKEN", "MOODLE_URL"} <= set(note["variables"])
    assert not {"GRADESYNC_WEBHOOK_SECRET_MOODLE", "ILIAS_TIMEZONE"} & set(note["variables"])
    assert "do-not-show" not in str(logged)

    [check] = lms_checks.ignored(s, os.environ)
    assert check.status == "warn" and "MOODLE_TOKEN, MOODLE_URL" in check.detail
    assert "GRADESYNC_WEBHOOK_SECRET_MOODLE" not in check.detail
    [apis] = lms_checks.check(s)
    assert apis.detail == (
        "none configured (moodle/default: completion_only: completions are delivered without "
        "a grade; xapi/default: grades come in their events)"
    )


def test_the_stacks_notes_come_from_the_sources_file(tmp_path: Path, env: dict[str, str]) -> None:
    installations = [
        *two_moodles(grade_policy="completion_only", enabled=False),
        {"kind": "xapi", "instance": "lrs", "secret": "a-second-secret-of-16"},
    ]
    del installations[1]["api"]
    s = settings_for(write(tmp_path, installations))
    environ = {"GRADESYNC_SOURCES": s.sources_path or ""}
    notes = dev_notes(environ, s.sources)
    assert environ["GRADESYNC_INSECURE_DEV"] == "1"
    assert notes == [
        "no GRADESYNC_WEBHOOK_SECRET_CANONICAL: POST /events accepts unsigned events naming "
        "any installation (dev); each installation's route checks its own secret",
        "moodle/staff: /events/moodle/staff, grades fetched from https://staff.test",
        "moodle/acme: /events/moodle/acme, completions without grades (completion_only), "
        "DISABLED (503)",
        "ilias/default: /events/ilias/default, grades from the events",
        "xapi/lrs: /events/xapi/lrs, grades from the events",
    ]
    assert "MOODLE_GRADE_POLICY" not in environ  # not read with a sources file: not set


def test_the_stack_delivers_into_its_simulator_with_webhook_secrets_set_too() -> None:
    """A secret set used to leave GRADESYNC_INSECURE_DEV unset: the stack's worker refused to
    deliver into the stack's own simulator, and `stack up` died with a traceback."""
    environ = {"GRADESYNC_WEBHOOK_SECRET_CANONICAL": "whsec_" + "A" * 24}
    dev_notes(environ, None)
    assert environ["GRADESYNC_INSECURE_DEV"] == "1"


def test_the_demo_names_the_installations_it_needs(
    tmp_path: Path, env: dict[str, str], ledger: Ledger
) -> None:
    """Against sources without default installations it sends nothing it knows will fail."""
    s = settings_for(write(tmp_path, two_moodles()[:2]))  # moodle staff and acme only
    console = Console(record=True, width=400)
    with respx.mock(assert_all_called=False) as lms:
        posted = lms.post(url__startswith="http://api.test/")
        lms.get("http://sim.test/_sim/state").respond(json={})
        assert demo.run("http://api.test", "http://sim.test", ledger, s, console) == 0
    assert not posted.called
    text = console.export_text()
    hint = "The sources name no anewspring/default, ilias/default, moodle/default, xapi/default"
    assert hint in text
    assert "skipped: no moodle/default" in text


@pytest.mark.parametrize("instance", ["no", "2024", "off"])
def test_an_instance_yaml_reads_as_a_boolean_or_number_says_to_quote_it(
    tmp_path: Path, instance: str
) -> None:
    text = f"installations:\n  - kind: xapi\n    instance: {instance}\n    secret: {WHSEC}\n"
    [line] = problems_of(tmp_path, text)
    assert line.startswith("3: installations[0].instance: must be text: quote it")


def test_an_event_id_of_two_installations_of_one_source_is_not_called_two_sources() -> None:
    message = str(AmbiguousEventId("anewspring-evt-5501", ["a", "b"]))
    assert "different sources or installations" in message


@pytest.mark.parametrize("text", ['"no"', '"0"', '"false"', "1"])
def test_enabled_takes_a_yaml_boolean_only(tmp_path: Path, text: str) -> None:
    """A quoted "no" switched an installation off: only true/false (or yes/no unquoted) do."""
    path = tmp_path / "s.yaml"
    path.write_text(
        f"installations:\n  - kind: xapi\n    secret: a-second-secret-of-16\n    enabled: {text}\n"
    )
    with pytest.raises(sources_file.SourcesError) as info:
        sources_file.load(str(path), {})
    assert any(":4: installations[0].enabled:" in p for p in info.value.problems), info.value
