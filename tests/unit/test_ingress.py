"""The ingress in process (fakeredis): status codes, authentication, idempotency."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from fastapi.testclient import TestClient

from gradesync.ledger import Ledger
from gradesync.settings import Settings
from producers.api import create_app
from producers.signatures import anewspring_signature, standard_signature

FIXTURES = Path(__file__).parent.parent / "fixtures"
WHSEC = "whsec_" + base64.b64encode(b"unit-secret-of-24-bytes!").decode()
ASP = "anewspring-unit-secret"
METRICS_TOKEN = "a-metrics-token-for-tests"


def settings(**overrides: Any) -> Settings:
    env = {
        "GRADESYNC_WEBHOOK_SECRET_CANONICAL": WHSEC,
        "GRADESYNC_WEBHOOK_SECRET_MOODLE": "dev-moodle-token",
        "GRADESYNC_WEBHOOK_SECRET_ANEWSPRING": ASP,
        "GRADESYNC_WEBHOOK_SECRET_ILIAS": WHSEC,
        "GRADESYNC_WEBHOOK_SECRET_XAPI": WHSEC,
        "GRADESYNC_MAX_BODY_BYTES": "65536",
        "GRADESYNC_INSECURE_DEV": "0",  # production rules, whatever the test session sets
        "GRADESYNC_METRICS_TOKEN": METRICS_TOKEN,
        **overrides,
    }
    return Settings(**env)


class App:
    def __init__(self, **overrides: Any) -> None:
        self.sent: list[str] = []
        self.ledger = Ledger(fakeredis.FakeRedis())
        self.client = TestClient(create_app(self.ledger, self.sent.append, settings(**overrides)))

    def signed(self, path: str, body: bytes, msg_id: str = "m1", ts: int | None = None) -> Any:
        stamp = str(ts or int(time.time()))
        return self.client.post(
            path,
            content=body,
            headers={
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": stamp,
                "webhook-signature": standard_signature(WHSEC, msg_id, stamp, body),
            },
        )


@pytest.fixture
def app() -> App:
    return App()


CANONICAL = (FIXTURES / "canonical.json").read_bytes()


def test_canonical_recorded_then_replayed(app: App) -> None:
    first = app.signed("/events", CANONICAL)
    assert first.status_code == 202
    assert set(first.json()) == {"key", "event_id", "state"} and first.json()["state"] == "queued"
    assert app.sent == [first.json()["key"]]
    again = app.signed("/events", CANONICAL)  # same webhook-id, same body
    assert again.status_code == 200 and again.json() == first.json()
    fresh_id = app.signed("/events", CANONICAL, msg_id="m2")  # same event, new delivery
    assert fresh_id.status_code == 200 and fresh_id.json()["key"] == first.json()["key"]
    assert len(app.sent) == 1


def test_replayed_id_with_other_body_is_409(app: App) -> None:
    app.signed("/events", CANONICAL)
    other = CANONICAL.replace(b'"8.5"', b'"9.5"')
    response = app.signed("/events", other)
    assert response.status_code == 409 and response.json()["error"] == "replayed_id"


@pytest.mark.parametrize(
    ("headers", "body", "status", "error"),
    [
        ({"content-type": "application/json"}, CANONICAL, 401, "unauthenticated"),
        ({"content-type": "text/plain"}, CANONICAL, 415, "unsupported_media_type"),
        ({"content-type": "application/json"}, b"{nope", 401, "unauthenticated"),
        ({"content-type": "application/json"}, b"x" * 70_000, 413, "too_large"),
    ],
)
def test_error_codes(
    app: App, headers: dict[str, str], body: bytes, status: int, error: str
) -> None:
    response = app.client.post("/events", content=body, headers=headers)
    assert response.status_code == status and response.json()["error"] == error
    assert app.sent == []


def test_a_signed_malformed_body_is_400(app: App) -> None:
    # Only an authenticated caller's body is parsed at all (Standard Webhooks sign the bytes).
    response = app.signed("/events", b"{nope")
    assert response.status_code == 400 and response.json()["error"] == "malformed_json"


def test_stale_timestamp_and_wrong_signature_are_401(app: App) -> None:
    assert app.signed("/events", CANONICAL, ts=int(time.time()) - 3600).status_code == 401
    bad = app.client.post(
        "/events",
        content=CANONICAL,
        headers={
            "content-type": "application/json",
            "webhook-id": "x",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1,AAAA",
        },
    )
    assert bad.status_code == 401


def test_invalid_fields_are_named(app: App) -> None:
    body = json.dumps({**json.loads(CANONICAL), "completed_at": "2026-11-20", "colour": 1})
    response = app.signed("/events", body.encode())
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["detail"]}
    assert {"completed_at", "colour"} <= fields


def test_unset_secret_is_refused_unless_insecure_dev() -> None:
    closed = App(GRADESYNC_WEBHOOK_SECRET_XAPI=None)
    xapi = (FIXTURES / "xapi-completed.json").read_bytes()
    r = closed.client.post(
        "/events/xapi", content=xapi, headers={"content-type": "application/json"}
    )
    assert r.status_code == 401 and "no webhook secret" in r.json()["detail"]
    dev = App(GRADESYNC_WEBHOOK_SECRET_XAPI=None, GRADESYNC_INSECURE_DEV="1")
    r = dev.client.post("/events/xapi", content=xapi, headers={"content-type": "application/json"})
    assert r.status_code == 202


def test_moodle_token_is_checked_and_never_stored(app: App) -> None:
    body = json.loads((FIXTURES / "moodle-local_webhooks-course_completed.json").read_text())
    response = app.client.post("/events/moodle", json=body)
    assert response.status_code == 202
    record = app.ledger.get(response.json()["key"])
    assert record is not None and record.needs == ["grade"]
    assert "dev-moodle-token" not in json.dumps(record.public())
    assert record.event.person_id == "57"  # relateduserid, not userid
    string_ids = {**body, "relateduserid": 57, "courseid": 12, "objectid": "18"}
    assert app.client.post("/events/moodle", json=string_ids).status_code == 202
    missing = {k: v for k, v in body.items() if k != "relateduserid"}
    r = app.client.post("/events/moodle", json=missing)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "relateduserid"


def test_anewspring_signature_and_ignored_events(app: App) -> None:
    body = (FIXTURES / "anewspring-webhook.json").read_bytes()
    sig = anewspring_signature(ASP, body)
    ok = app.client.post(
        "/events/anewspring",
        content=body,
        headers={"content-type": "application/json", "X-WebHook-Signature": sig},
    )
    assert ok.status_code == 202
    enrolled = json.dumps({"event": "enrolled", "created": "2026-11-20T10:00:00Z"}).encode()
    sig = anewspring_signature(ASP, enrolled)
    ignored = app.client.post(
        "/events/anewspring",
        content=enrolled,
        headers={"content-type": "application/json", "X-WebHook-Signature": sig},
    )
    assert ignored.status_code == 202 and "ignored" in ignored.json()
    tampered = app.client.post(
        "/events/anewspring",
        content=body + b" ",
        headers={
            "content-type": "application/json",
            "X-WebHook-Signature": anewspring_signature(ASP, body),
        },
    )
    assert tampered.status_code == 401


def test_ilias_status_other_than_completed_is_ignored(app: App) -> None:
    data = json.loads((FIXTURES / "ilias-updateStatus.json").read_text())
    response = app.signed("/events/ilias", json.dumps({**data, "status": 3}).encode())
    assert response.status_code == 202 and "failed" in response.json()["ignored"]


def test_health_ready_metrics(app: App) -> None:
    assert app.client.get("/healthz").json() == {"status": "ok"}
    assert app.client.get("/readyz").status_code == 200
    app.signed("/events", CANONICAL)
    text = app.client.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}).text
    created = 'installation="moodle/default",outcome="created",source="canonical"'
    assert f"gradesync_completions_received_total{{{created}}}" in text
    assert 'gradesync_ledger_records{state="queued"} 1.0' in text
    assert "gradesync_queue_depth" in text
