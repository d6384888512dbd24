"""Strangers at the ingress: every hostile request gets a 4xx, never a 500, and nothing a
stranger sends is parsed before the caller is authenticated where the scheme allows it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from gradesync.settings import ConfigurationError, Settings, redacted_url, require_coachview
from producers.signatures import anewspring_signature, standard_signature
from tests.unit.test_ingress import ASP, WHSEC, App

FIXTURES = Path(__file__).parent.parent / "fixtures"
CANONICAL = (FIXTURES / "canonical.json").read_bytes()
DEEP = b"[" * 30_000 + b"]" * 30_000  # within the 64 KiB limit
HUGE_INT = b'{"grade": ' + b"9" * 5000 + b"}"


@pytest.fixture
def app() -> App:
    return App()


def _standard(body: bytes, **headers: str) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {
        "content-type": "application/json",
        "webhook-id": "m1",
        "webhook-timestamp": stamp,
        "webhook-signature": standard_signature(WHSEC, "m1", stamp, body),
        **headers,
    }


@pytest.mark.parametrize("body", [DEEP, HUGE_INT, b'{"grade": NaN}', b'{"a": 1e999}', b"\xff{}"])
@pytest.mark.parametrize("path", ["/events", "/events/ilias", "/events/xapi"])
def test_bodies_that_break_a_json_parser_are_401_unsigned_and_400_signed(
    app: App, path: str, body: bytes
) -> None:
    unsigned = app.client.post(path, content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401
    signed = app.client.post(path, content=body, headers=_standard(body))
    assert signed.status_code == 400 and signed.json()["error"] == "malformed_json"


@pytest.mark.parametrize("body", [DEEP, HUGE_INT])
def test_moodle_parses_its_token_bearing_body_with_limits(app: App, body: bytes) -> None:
    response = app.client.post(
        "/events/moodle", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["error"] == "malformed_json"


def test_anewspring_checks_the_signature_before_parsing(app: App) -> None:
    response = app.client.post(
        "/events/anewspring", content=DEEP, headers={"content-type": "application/json"}
    )
    assert response.status_code == 401
    signed = app.client.post(
        "/events/anewspring",
        content=DEEP,
        headers={
            "content-type": "application/json",
            "X-WebHook-Signature": anewspring_signature(ASP, DEEP),
        },
    )
    assert signed.status_code == 400


@pytest.mark.parametrize(
    ("path", "header"),
    [
        ("/events", "webhook-signature"),
        ("/events", "webhook-timestamp"),
        ("/events", "webhook-id"),
        ("/events/anewspring", "X-WebHook-Signature"),
    ],
)
def test_non_ascii_signature_headers_are_401(app: App, path: str, header: str) -> None:
    headers = {**_standard(CANONICAL), header: "v1,\u00e9\u00ff\u00e0"}
    raw = [(k.encode(), v.encode("latin-1")) for k, v in headers.items()]
    response = app.client.post(path, content=CANONICAL, headers=raw)
    assert response.status_code == 401


@pytest.mark.parametrize("token", ["\ud800", "\u00e9t\u00e9", "x" * 10_000, 42, None, ["t"]])
def test_odd_moodle_tokens_are_401(app: App, token: Any) -> None:
    body = json.loads((FIXTURES / "moodle-local_webhooks-course_completed.json").read_text())
    body["token"] = token
    raw = json.dumps(body).encode()  # ensure_ascii: a lone surrogate travels as \ud800
    response = app.client.post(
        "/events/moodle", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 401


def test_moodle_host_in_the_body_does_not_choose_the_installation(app: App) -> None:
    body = json.loads((FIXTURES / "moodle-local_webhooks-course_completed.json").read_text())
    body["host"] = "https://someone-else.example.org"
    response = app.client.post("/events/moodle", json=body)
    assert response.status_code == 202
    record = app.ledger.get(response.json()["key"])
    assert record is not None and record.event.source_instance == "default"


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("GRADESYNC_WEBHOOK_SECRET_CANONICAL", "whsec_change-me-base64", "base64"),
        ("GRADESYNC_WEBHOOK_SECRET_ILIAS", "whsec_" + "YWJj", "too short"),
        ("GRADESYNC_WEBHOOK_SECRET_MOODLE", "change-me", "too short"),
        ("GRADESYNC_WEBHOOK_SECRET_ANEWSPRING", " a-secret-with-a-space ", "whitespace"),
        ("COACHVIEW_CLIENT_SECRET", "  ", "blank"),
    ],
)
def test_unusable_secrets_are_refused_when_settings_load(
    variable: str, value: str, problem: str
) -> None:
    with pytest.raises(ValidationError) as info:
        Settings.model_validate({variable: value})
    (error,) = info.value.errors()
    assert error["loc"] == (variable,) and problem in error["msg"]


def test_the_ingress_refuses_to_start_with_a_malformed_secret(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "GRADESYNC_WEBHOOK_SECRET_XAPI": "whsec_change-me-base64"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "gradesync"), "api", "--port", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "GRADESYNC_WEBHOOK_SECRET_XAPI" in done.stderr and "base64" in done.stderr
    assert "Traceback" not in done.stderr and "change-me" not in done.stderr


def test_a_canonical_caller_cannot_block_moodles_real_completion(app: App) -> None:
    moodle = json.loads((FIXTURES / "moodle-local_webhooks-course_completed.json").read_text())
    moodle_event_id = (
        f"moodle-default-course_completed-{moodle['objectid']}-{moodle['timecreated']}"
    )
    squatter = {
        **json.loads(CANONICAL),
        "source": "moodle",
        "source_instance": "default",
        "event_id": moodle_event_id,
        "person_id": "666",
    }
    body = json.dumps(squatter).encode()
    assert app.client.post("/events", content=body, headers=_standard(body)).status_code == 202
    real = app.client.post("/events/moodle", json=moodle)
    assert real.status_code == 202, real.text


def test_one_webhook_id_with_different_bodies_at_once_gets_in_once() -> None:
    """Concurrent deliveries of one webhook-id: the id is claimed atomically, so at most one
    body is recorded and the others are refused (409), never all accepted."""
    app = App()
    stamp = str(int(time.time()))
    bodies = [
        json.dumps({**json.loads(CANONICAL), "person_id": f"P{i}", "event_id": None}).encode()
        for i in range(10)
    ]

    async def send_all() -> list[int]:
        transport = httpx.ASGITransport(app=app.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as client:
            sent = [
                client.post(
                    "/events",
                    content=body,
                    headers={
                        "content-type": "application/json",
                        "webhook-id": "same-id",
                        "webhook-timestamp": stamp,
                        "webhook-signature": standard_signature(WHSEC, "same-id", stamp, body),
                    },
                )
                for body in bodies
            ]
            return [r.status_code for r in await asyncio.gather(*sent)]

    statuses = asyncio.run(send_all())
    assert statuses.count(202) == 1 and statuses.count(409) == 9, statuses
    assert len(app.ledger.newest()) == 1


async def _stalled_body(timeout_s: float, message: dict[str, Any]) -> Any:
    """A webhook route's body read under the ingress's body limit (producers/limits.py)."""
    from starlette.requests import Request

    from producers.api import Reject, _body
    from producers.limits import BodyLimit

    async def receive() -> dict[str, Any]:
        if message["type"] == "wait":
            await asyncio.sleep(3600)
        return message

    async def route(scope: Any, receive: Any, send: Any) -> None:
        try:
            await _body(Request(scope, receive))
        except Reject as exc:
            await JSONResponse({"error": exc.error}, exc.status)(scope, receive, send)

    sent: list[Any] = []

    async def send(m: Any) -> None:
        sent.append(m)

    scope = {"type": "http", "method": "POST", "headers": [], "path": "/events"}
    await BodyLimit(route, lambda _: 65536, timeout_s)(scope, receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"])["error"]


def test_a_body_that_never_arrives_is_408_and_a_hang_up_is_not_a_traceback() -> None:
    assert asyncio.run(_stalled_body(0.2, {"type": "wait"})) == (408, "body_timeout")
    gone = asyncio.run(_stalled_body(5, {"type": "http.disconnect"}))
    assert gone == (400, "client_disconnected")


def test_a_worker_outside_development_needs_a_coachview_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COACHVIEW_BASE_URL")  # the test session points it at the simulator
    with pytest.raises(ConfigurationError, match="COACHVIEW_BASE_URL is not set"):
        require_coachview(Settings.model_validate({"GRADESYNC_INSECURE_DEV": "0"}))
    with pytest.raises(ConfigurationError, match="are the simulator's"):
        require_coachview(
            Settings.model_validate(
                {"GRADESYNC_INSECURE_DEV": "0", "COACHVIEW_BASE_URL": "https://cv.example.nl"}
            )
        )
    require_coachview(
        Settings.model_validate(
            {
                "GRADESYNC_INSECURE_DEV": "0",
                "COACHVIEW_BASE_URL": "https://cv.example.nl",
                "COACHVIEW_CLIENT_SECRET": "a-real-secret",
            }
        )
    )
    require_coachview(Settings.model_validate({"GRADESYNC_INSECURE_DEV": "1"}))


def test_redis_urls_are_checked_and_their_passwords_never_shown() -> None:
    with pytest.raises(ValidationError, match="redis://"):
        Settings.model_validate({"REDIS_URL": "notaurl"})
    shown = redacted_url("redis://:S3cretPassw0rd@127.0.0.1:1/0")
    assert "S3cret" not in shown and shown == "redis://:***@127.0.0.1:1/0"
    assert redacted_url("redis://localhost:6379/0") == "redis://localhost:6379/0"


def test_a_bad_query_parameter_is_named_without_echoing_it(app: App) -> None:
    response = app.client.get("/console/attention", params={"retried": "<script>x</script>"})
    if response.status_code == 422:  # parameter validation answers before any page logic
        assert "<script>" not in response.text and "File " not in response.text
    assert response.status_code < 500
