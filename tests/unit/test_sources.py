"""Several LMS installations per deployment (issue 16): the sources file, its start-up checks,
the per-installation routes, enrichment with the right installation's API, and a disabled
installation's records waiting."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import respx
import yaml
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import ValidationError
from typer.testing import CliRunner

from gradesync import cli, sources_file
from gradesync import settings as settings_module
from gradesync.cli import common
from gradesync.event import CompletionEvent
from gradesync.ledger import Ledger, utcnow
from gradesync.lms.enrich import enrich
from gradesync.parsed import NEEDS_GRADE
from gradesync.record import Record
from gradesync.settings import ConfigurationError, Settings
from gradesync.sources import IliasSource, MoodleSource, Sources
from producers.api import create_app
from producers.signatures import anewspring_signature, standard_signature
from workers import resources, tasks

ROOT = Path(__file__).parent.parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
WHSEC = "whsec_" + "c2VjcmV0LWtleS1vZi1hdC1sZWFzdC0xNi1ieXRlcw=="
ASP_KEY = "an-academy-hmac-key-0001"
# Each academy its own key: a shared one is refused.
ACADEMIES = {i: f"{ASP_KEY}-{i}" for i in ("default", "north", "south")}
MOODLE_BODY = json.loads((FIXTURES / "moodle-local_webhooks-course_completed.json").read_text())
ENV = {
    "STAFF_TOKEN": "staff-moodle-webhook-token",
    "ACME_TOKEN": "acme-moodle-webhook-token-2",
    "STAFF_WS": "staff-ws-token",
    "ACME_WS": "acme-ws-token",
}


def write(tmp_path: Path, installations: list[dict[str, Any]]) -> str:
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({"installations": installations}, sort_keys=False))
    return str(path)


def two_moodles(**acme: Any) -> list[dict[str, Any]]:
    return [
        {
            "kind": "moodle",
            "instance": "staff",
            "secret_env": "STAFF_TOKEN",
            "api": {"url": "https://staff.test", "credential_env": "STAFF_WS"},
            "grade_format": "formatted",
            "person_field": "id",
        },
        {
            "kind": "moodle",
            "instance": "acme",
            "secret_env": "ACME_TOKEN",
            "api": {"url": "https://acme.test", "credential_env": "ACME_WS"},
            "person_field": "id",
            **acme,
        },
        {"kind": "ilias", "instance": "default", "secret": WHSEC},
    ]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return ENV


def settings_for(path: str, **more: Any) -> Settings:
    return Settings(GRADESYNC_SOURCES=path, GRADESYNC_INSECURE_DEV="0", **more)


# -- the file ---------------------------------------------------------------------------------


def test_the_example_file_covers_every_kind_and_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "sources.example.yaml").read_text()
    for name in {w for w in text.split() if w.isupper() and w.replace("_", "").isalpha()}:
        monkeypatch.setenv(name, f"a-secret-of-sixteen-or-more-{name}")  # each its own
    found = sources_file.load(str(ROOT / "sources.example.yaml"), dict(__import__("os").environ))
    assert {i.kind for i in found.installations} == {"moodle", "ilias", "anewspring", "xapi"}
    assert not found.find("anewspring", "academy-south").enabled
    assert found.ilias_polled() == [found.typed(IliasSource, "default")]


def test_a_broken_file_names_every_problem_with_its_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(
        "installations:\n"  # 1
        "  - kind: moodle\n"  # 2
        "    instance: staff\n"  # 3
        "    secret_env: UNSET_VARIABLE\n"  # 4
        "    api:\n"  # 5
        "      url: ftp://moodle.test\n"  # 6
        "      credential: do-not-show-me-1\n"  # 7
        "  - kind: canvas\n"  # 8
        "    instance: a\n"  # 9
        "  - kind: moodle\n"  # 10
        "    instance: staff\n"  # 11
        "    secret: do-not-show-me-2-long\n"  # 12
        "    grade_policy: completion_only\n"  # 13
        "  - kind: ilias\n"  # 14
        "    secret: do-not-show-me-3-long\n"  # 15
        "    timezone: Mars/Olympus\n"  # 16
        "    secert_env: TYPO\n"  # 17
        "  - kind: anewspring\n"  # 18
        "    instance: north\n"  # 19
        "    grade_policy: event\n"  # 20
    )
    with pytest.raises(sources_file.SourcesError) as info:
        sources_file.load(str(path), {})
    assert sorted(info.value.problems) == sorted(
        [
            f"{path}:10: installations[2]: moodle/staff is named twice (instance must be "
            "unique per kind)",
            f"{path}:4: installations[0].secret_env: environment variable UNSET_VARIABLE (the "
            "webhook secret) is unset or empty",
            f"{path}:6: installations[0].api.url: must be an http:// or https:// URL with a host",
            f"{path}:8: installations[1].kind: unknown kind 'canvas': one of moodle, ilias, "
            "anewspring, xapi",
            f"{path}:16: installations[3].timezone: unknown time zone 'Mars/Olympus' (an IANA "
            "name, e.g. Europe/Amsterdam)",
            f"{path}:17: installations[3].secert_env: unknown key (a typo?)",
            f"{path}:18: installations[4].secret_env: a webhook secret is needed: secret_env "
            "(preferred) or secret",
        ]
    )
    assert "do-not-show-me" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ":1: (file): Input should be a valid dictionary"),
        ("installations: [\n", ":2: not valid YAML"),
        ("installations: []\n", ":1: installations: List should have at least 1 item"),
        ("installations:\n  - {kind: xapi, instance: Big Name, secret: x}\n", "instance: must be"),
    ],
)
def test_odd_files_are_refused_clearly(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(sources_file.SourcesError) as info:
        sources_file.load(str(path), {})
    assert expected in str(info.value)


def test_without_a_file_todays_variables_are_one_installation_per_kind() -> None:
    s = Settings(
        MOODLE_INSTANCE="staff",
        GRADESYNC_WEBHOOK_SECRET_MOODLE="a-moodle-token-of-16",
        MOODLE_PERSON_FIELD="idnumber",
    )
    moodle = s.sources.typed(MoodleSource)  # /events/moodle keeps serving MOODLE_INSTANCE's
    assert moodle.name == "moodle/staff" and moodle.webhook_secret() == "a-moodle-token-of-16"
    assert moodle.person_field == "idnumber"
    assert [i.kind for i in s.sources.installations] == ["moodle", "ilias", "anewspring", "xapi"]


def test_bad_variables_are_refused_naming_them() -> None:
    s = Settings(ILIAS_TIMEZONE="Mars/Olympus", MOODLE_URL="ftp://x", ANEWSPRING_API_KEY=None)
    with pytest.raises(ConfigurationError) as info:
        s.sources  # noqa: B018
    text = str(info.value)
    assert "fix these environment variables" in text
    for problem in (
        "ILIAS_TIMEZONE: unknown",
        "MOODLE_URL: must be",
        "ANEWSPRING_API_KEY: is not set, but the API's URL is",
    ):
        assert problem in text


def test_an_instance_named_by_an_earlier_upgrade_note_keeps_working(tmp_path: Path) -> None:
    """An earlier README advised MOODLE_INSTANCE = the Moodle host (a URL, no slug): it stays
    the installation of /events/moodle, with the record keys it had."""
    s = Settings(
        MOODLE_INSTANCE="https://lms.example.nl",
        GRADESYNC_WEBHOOK_SECRET_MOODLE="a-moodle-token-of-16",
        GRADESYNC_INSECURE_DEV="0",
    )
    ledger = Ledger(fakeredis.FakeRedis())
    client = TestClient(create_app(ledger, lambda _: None, s))
    answer = client.post("/events/moodle", json={**MOODLE_BODY, "token": "a-moodle-token-of-16"})
    assert answer.status_code == 202, answer.text
    (rec,) = ledger.newest()
    assert isinstance(rec, Record) and rec.event.key.text() == "moodle|https://lms.example.nl|57|12"
    # In a sources file an instance must be a slug: its route must reach it.
    path = write(
        tmp_path, [{"kind": "moodle", "instance": "https://lms.example.nl", "secret": WHSEC}]
    )
    with pytest.raises(ConfigurationError, match=r"installations\[0\]\.instance: must be a slug"):
        settings_for(path).sources  # noqa: B018


def test_the_duplicate_installation_check_of_the_model_itself() -> None:
    """Sources built without the file reader (from variables, or by a caller) refuse a second
    installation of one kind and instance too; one instance name across kinds is fine."""
    one = {"kind": "ilias", "instance": "default", "secret": WHSEC}
    other_kind = {"kind": "xapi", "instance": "default", "secret": WHSEC}
    with pytest.raises(ValidationError, match=r"installations\[2\]: ilias/default is named twice"):
        Sources.parse({"installations": [one, other_kind, one]}, {})
    two = Sources.parse({"installations": [one, other_kind, {**one, "instance": "b"}]}, {})
    assert two.typed(IliasSource, "b").instance == "b"
    assert two.typed(IliasSource).instance == "default"
    # The file reader's own pass, which reports the line: no instance given is "default".
    implicit = {"kind": "ilias", "secret": WHSEC}
    assert sources_file.duplicates({"installations": [one, other_kind, implicit, "x"]}) == [
        (2, "ilias/default")
    ]
    assert sources_file.duplicates({"installations": "not a list"}) == []
    assert sources_file.duplicates(["not", "a", "mapping"]) == []


# -- start-up refusal: CLI and ingress --------------------------------------------------------


def test_the_cli_refuses_a_broken_file_with_one_line_per_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, [{"kind": "blackboard"}, {"kind": "xapi", "secret": "sh"}])
    monkeypatch.setenv("GRADESYNC_SOURCES", path)
    settings_module.get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.app, ["enqueue", "-"], input="{}")
    finally:
        settings_module.get_settings.cache_clear()
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "gradesync cannot start: fix the sources file"
    assert f"{path}:2: installations[0].kind: unknown kind 'blackboard'" in lines[1]
    assert f"{path}:4: installations[1].secret: is too short" in lines[2]


def test_the_ingress_refuses_to_start(tmp_path: Path) -> None:
    path = write(tmp_path, [{"kind": "moodle", "api": {"url": "moodle.test", "credential": "x"}}])
    with pytest.raises(ConfigurationError, match=r"installations\[0\]\.api\.url: must be"):
        create_app(Ledger(fakeredis.FakeRedis()), lambda _: None, settings_for(path))


def test_an_installation_whose_grades_would_be_lost_refuses_to_start(
    tmp_path: Path, env: dict[str, str]
) -> None:
    installations = two_moodles()
    del installations[1]["api"]
    with pytest.raises(ConfigurationError, match=r"installations\[1\]\.grade_policy: fetch \(the"):
        create_app(
            Ledger(fakeredis.FakeRedis()),
            lambda _: None,
            settings_for(write(tmp_path, installations)),
        )


# -- routes -----------------------------------------------------------------------------------


class Ingress:
    def __init__(self, path: str) -> None:
        self.sent: list[str] = []
        self.ledger = Ledger(fakeredis.FakeRedis())
        s = settings_for(path, GRADESYNC_WEBHOOK_SECRET_CANONICAL=WHSEC)
        self.client = TestClient(create_app(self.ledger, self.sent.append, s))

    def moodle(self, route: str, token: str, **body: Any) -> Any:
        return self.client.post(route, json={**MOODLE_BODY, **body, "token": token})

    def signed(self, path: str, data: Any) -> Any:
        body, stamp = json.dumps(data).encode(), str(int(time.time()))
        return self.client.post(
            path,
            content=body,
            headers={
                "content-type": "application/json",
                "webhook-id": "m1",
                "webhook-timestamp": stamp,
                "webhook-signature": standard_signature(WHSEC, "m1", stamp, body),
            },
        )


@pytest.fixture
def ingress(tmp_path: Path, env: dict[str, str]) -> Ingress:
    return Ingress(write(tmp_path, two_moodles()))


def test_the_same_learner_and_course_in_two_installations_are_two_records(
    ingress: Ingress,
) -> None:
    staff = ingress.moodle("/events/moodle/staff", ENV["STAFF_TOKEN"])
    acme = ingress.moodle("/events/moodle/acme", ENV["ACME_TOKEN"])
    assert (staff.status_code, acme.status_code) == (202, 202)
    assert staff.json()["key"] != acme.json()["key"]
    keys = {r.event.key.text() for r in ingress.ledger.newest()}  # type: ignore[union-attr]
    assert keys == {"moodle|staff|57|12", "moodle|acme|57|12"}


def test_a_signature_valid_for_one_installation_is_refused_on_another(ingress: Ingress) -> None:
    refused = ingress.moodle("/events/moodle/acme", ENV["STAFF_TOKEN"])
    assert refused.status_code == 401 and refused.json()["error"] == "unauthenticated"
    assert ingress.sent == []


def test_the_body_never_names_the_installation(ingress: Ingress) -> None:
    # Moodle's ``host`` is its wwwroot: recorded under the route's installation regardless.
    hosted = ingress.moodle("/events/moodle/acme", ENV["ACME_TOKEN"], host="https://staff.test")
    assert hosted.status_code == 202
    update = json.loads((FIXTURES / "ilias-updateStatus.json").read_text())
    other = ingress.signed("/events/ilias/default", {**update, "instance": "elsewhere"})
    assert other.status_code == 422
    assert other.json()["detail"][0]["field"] == "instance"
    same = ingress.signed("/events/ilias", {**update, "instance": "default"})
    assert same.status_code == 202


@pytest.mark.parametrize("instance", ["nope", "x" * 5000, "staff%20", "st\u00e4ff", "%00", "Staff"])
def test_an_unknown_installation_is_404(ingress: Ingress, instance: str) -> None:
    answer = ingress.moodle(f"/events/moodle/{instance}", ENV["STAFF_TOKEN"])
    assert answer.status_code == 404 and answer.json()["error"] in (
        "unknown_installation",
        "not_found",
    )


def test_events_moodle_is_the_default_installation(ingress: Ingress) -> None:
    answer = ingress.moodle("/events/moodle", ENV["STAFF_TOKEN"])
    assert answer.status_code == 404 and "'default'" in answer.json()["detail"]


def rejected(installation: str, error: str) -> float:
    labels = {"source": "moodle", "installation": installation, "error": error}
    return REGISTRY.get_sample_value("gradesync_ingress_rejected_total", labels) or 0.0


def test_refusals_are_counted_per_installation_never_per_made_up_name(
    tmp_path: Path, env: dict[str, str]
) -> None:
    app = Ingress(write(tmp_path, two_moodles(enabled=False)))
    before = (
        rejected("unknown", "unknown_installation"),
        rejected("moodle/acme", "installation_disabled"),
    )
    app.moodle("/events/moodle/made-up-1", ENV["ACME_TOKEN"])
    app.moodle("/events/moodle/made-up-2", ENV["ACME_TOKEN"])
    app.moodle("/events/moodle/acme", ENV["ACME_TOKEN"])
    after = (
        rejected("unknown", "unknown_installation"),
        rejected("moodle/acme", "installation_disabled"),
    )
    assert (after[0] - before[0], after[1] - before[1]) == (2.0, 1.0)
    assert rejected("made-up-1", "unknown_installation") == 0.0


def test_a_disabled_installation_is_503_and_canonical_events_are_held_to_the_sources(
    tmp_path: Path, env: dict[str, str]
) -> None:
    app = Ingress(write(tmp_path, two_moodles(enabled=False)))
    disabled_hook = app.moodle("/events/moodle/acme", ENV["ACME_TOKEN"])
    assert disabled_hook.status_code == 503 and disabled_hook.headers["retry-after"] == "900"
    canonical = json.loads((FIXTURES / "canonical.json").read_text())
    unknown = app.signed("/events", {**canonical, "source_instance": "default"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["field"] == "source_instance"
    disabled = app.signed("/events", {**canonical, "source_instance": "acme"})
    assert disabled.status_code == 503 and disabled.json()["error"] == "installation_disabled"
    assert app.signed("/events", {**canonical, "source_instance": "staff"}).status_code == 202
    assert app.ledger.counts().get("queued") == 1


# -- the worker -------------------------------------------------------------------------------


def record(instance: str, person: str = "57") -> Record:
    event = CompletionEvent.model_validate(
        {
            "source": "moodle",
            "source_instance": instance,
            "person_id": person,
            "course_id": "12",
            "completed_at": "2026-11-20T14:00:00+01:00",
        }
    )
    now = utcnow()
    return Record(
        event=event, state="in_progress", first_seen=now, updated=now, needs=[NEEDS_GRADE]
    )


@respx.mock
def test_enrichment_asks_the_records_own_installation(tmp_path: Path, env: dict[str, str]) -> None:
    s = settings_for(write(tmp_path, two_moodles()))
    status = json.loads(
        (FIXTURES / "moodle-core_completion_get_course_completion_status.json").read_text()
    )
    tokens: list[str] = []

    def answer(host: str, raw: float) -> Any:
        def reply(request: Any) -> Any:
            from urllib.parse import parse_qs

            import httpx

            form = parse_qs(request.content.decode())
            tokens.append(f"{host}:{form['wstoken'][0]}")
            if form["wsfunction"][0] == "gradereport_user_get_grade_items":
                item = {"itemtype": "course", "graderaw": raw, "grademin": 0, "grademax": 10}
                item["gradeformatted"] = f"{raw:.2f}"
                return httpx.Response(200, json={"usergrades": [{"gradeitems": [item]}]})
            return httpx.Response(200, json=status)

        return reply

    respx.post("https://staff.test/webservice/rest/server.php").mock(side_effect=answer("staff", 6))
    respx.post("https://acme.test/webservice/rest/server.php").mock(side_effect=answer("acme", 8))
    staff, acme = enrich(record("staff"), s), enrich(record("acme"), s)
    assert staff is not None and staff.grade == "6.00"  # staff: formatted, as asked
    assert acme is not None and acme.grade == "8.2"  # acme: the default dutch (1 + 9 × 0.8)
    assert set(tokens) == {"staff:staff-ws-token", "acme:acme-ws-token"}


def test_a_disabled_installations_record_waits_without_spending_an_attempt(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = settings_for(write(tmp_path, two_moodles(enabled=False)))
    ledger = Ledger(fakeredis.FakeRedis())
    monkeypatch.setattr(resources, "ledger", lambda: ledger)
    monkeypatch.setattr(resources, "settings", lambda: s)
    event = record("acme").event
    rid = ledger.admit(event, utcnow()).record.id

    assert tasks.fetch_from_lms.apply(args=(rid,)).state == "IGNORED"

    held = ledger.get(rid)
    assert held is not None and held.state == "queued" and held.attempts == 0
    assert held.last_error is not None and held.last_error.code == "installation_disabled"
    assert held.daily_retries == 0
    assert ledger.take_deferred(utcnow() + tasks.DISABLED_RECHECK) == [rid]


def test_two_academies_numbering_their_events_alike_are_two_records(
    tmp_path: Path, env: dict[str, str]
) -> None:
    path = write(
        tmp_path,
        [
            {"kind": "anewspring", "instance": i, "secret": key, "grade_policy": "event"}
            for i, key in ACADEMIES.items()
        ],
    )
    app = Ingress(path)
    body = (FIXTURES / "anewspring-webhook.json").read_bytes()
    answers = [
        app.client.post(
            route,
            content=body,
            headers={
                "content-type": "application/json",
                "x-webhook-signature": anewspring_signature(key, body),
            },
        )
        for route, key in zip(
            ("/events/anewspring", "/events/anewspring/north", "/events/anewspring/south"),
            ACADEMIES.values(),
            strict=True,
        )
    ]
    # Event ids are scoped per channel and installation (record.event_scope): the same id
    # from three academies is three events, never a conflict.
    assert [a.status_code for a in answers] == [202, 202, 202], [a.text for a in answers]
    assert {a.json()["event_id"] for a in answers} == {"anewspring-evt-5501"}
    assert len({a.json()["key"] for a in answers}) == 3


def test_the_report_breaks_down_by_installation() -> None:
    from datetime import time as dtime
    from zoneinfo import ZoneInfo

    from gradesync.record import LedgerError
    from gradesync.report import build

    ledger = Ledger(fakeredis.FakeRedis())
    events = [record("staff").event, record("acme").event, record("acme", person="58").event]
    for event in events:
        rid = ledger.admit(event, utcnow()).record.id
        ledger.start(rid, utcnow())
        error = LedgerError(code="unknown_person", message="no such person")
        ledger.unresolved(
            rid, utcnow(), error, max_retries=30, retry_time=dtime(3), tz=ZoneInfo("UTC")
        )
    found = build(ledger, None, 30, ZoneInfo("Europe/Amsterdam"))
    assert found.installations == {
        "moodle/acme": {"unresolved": 2},
        "moodle/staff": {"unresolved": 1},
    }
    (group,) = found.groups
    assert group.installations == {"moodle/acme": 2, "moodle/staff": 1}


def test_enqueue_takes_only_installations_in_the_sources(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    monkeypatch.setattr(common, "ledger", lambda: ledger)
    monkeypatch.setattr(common, "send", lambda rid: None)
    monkeypatch.setenv("GRADESYNC_SOURCES", write(tmp_path, two_moodles(enabled=False)))
    settings_module.get_settings.cache_clear()
    runner = CliRunner()
    body = json.dumps(MOODLE_BODY)
    canonical = json.loads((FIXTURES / "canonical.json").read_text())
    try:
        unknown = runner.invoke(cli.app, ["enqueue", "--source", "moodle", "--instance", "x", "-"])
        disabled = runner.invoke(
            cli.app, ["enqueue", "--source", "moodle", "--instance", "acme", "-"], input=body
        )
        native = runner.invoke(
            cli.app, ["enqueue", "--source", "moodle", "--instance", "staff", "-"], input=body
        )
        lines = "\n".join(
            json.dumps({**canonical, "source_instance": i, "event_id": f"c-{i}"})
            for i in ("staff", "nowhere")
        )
        canonical_run = runner.invoke(cli.app, ["enqueue", "-"], input=lines)
    finally:
        settings_module.get_settings.cache_clear()
    assert unknown.exit_code == 2 and "no moodle installation named 'x'" in unknown.output
    assert disabled.exit_code == 2 and "moodle/acme is disabled" in disabled.output
    assert native.exit_code == 0, native.output
    assert canonical_run.exit_code == 1
    first, second = canonical_run.output.strip().splitlines()
    assert "accepted" in first
    assert "rejected: source_instance: no moodle installation named 'nowhere'" in second
    # The native and the canonical event are the same completion: one record.
    keys = [r.event.key.text() for r in ledger.newest() if isinstance(r, Record)]
    assert keys == ["moodle|staff|57|12"]


def test_a_disabled_xapi_installation_asks_its_senders_to_come_back_too(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """The Statement endpoint answered the ingress's 503 without its Retry-After (finding:
    the refusal's headers were dropped)."""
    basic = {"username": "lrs", "password": "an-lrs-password-of-16"}
    lrs = {"kind": "xapi", "instance": "lrs", "basic_auth": basic, "enabled": False}
    ingress = Ingress(write(tmp_path, [*two_moodles(), lrs]))
    answer = ingress.client.post(
        "/xapi/lrs/statements",
        json=[],
        headers={"X-Experience-API-Version": "1.0.3"},
    )
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "900"
