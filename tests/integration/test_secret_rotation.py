"""Rotating a webhook secret without a gap (issue 25 item 10), against a real ``gradesync api``:
each installation accepts its current secret and, through the date in
``previous_secret_expires``, its previous one — for every signature kind (Moodle's token,
aNewSpring's HMAC, Standard Webhooks); after that date the previous one is refused."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from gradesync.procs import BIN, Proc, free_port, wait_until
from gradesync.settings import PER_KIND_VARIABLE
from producers.signatures import anewspring_signature, standard_signature
from tests.integration.conftest import FIXTURES, Stack


def whsec(text: str) -> str:
    return "whsec_" + base64.b64encode(text.encode()).decode()


SECRETS = {
    "MOODLE_NEW": "moodle-token-new-0001",
    "MOODLE_OLD": "moodle-token-old-0001",
    "ASP_NEW": "anewspring-key-new-0001",
    "ASP_OLD": "anewspring-key-old-0001",
    "XAPI_NEW": whsec("xapi-secret-new-0001"),
    "XAPI_OLD": whsec("xapi-secret-old-0001"),
    "GONE_NEW": "moodle-token-new-0002",
    "GONE_OLD": "moodle-token-old-0002",
}


def entries() -> list[dict[str, object]]:
    # Two days either side of today (UTC): a run near midnight cannot fall on the boundary.
    today = datetime.now(UTC).date()
    rotating = {"previous_secret_expires": (today + timedelta(days=2)).isoformat()}
    expired = {"previous_secret_expires": (today - timedelta(days=2)).isoformat()}
    return [
        {"kind": "moodle", "instance": "rot", "grade_policy": "completion_only",
         "secret_env": "MOODLE_NEW", "previous_secret_env": "MOODLE_OLD", **rotating},
        {"kind": "moodle", "instance": "gone", "grade_policy": "completion_only",
         "secret_env": "GONE_NEW", "previous_secret_env": "GONE_OLD", **expired},
        {"kind": "anewspring", "instance": "rot", "grade_policy": "completion_only",
         "secret_env": "ASP_NEW", "previous_secret_env": "ASP_OLD", **rotating},
        {"kind": "xapi", "instance": "rot",
         "secret_env": "XAPI_NEW", "previous_secret_env": "XAPI_OLD", **rotating},
    ]  # fmt: skip


@pytest.fixture
def api(stack: Stack, tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({"installations": entries()}, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not PER_KIND_VARIABLE.fullmatch(k)}
    env |= SECRETS | {"GRADESYNC_SOURCES": str(path)}
    port = free_port()
    proc = Proc("api-rotation", [str(BIN / "gradesync"), "api", "--port", str(port)], tmp_path, env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{base}/healthz").is_success, timeout=60)
        yield base
    finally:
        proc.stop()


def moodle(base: str, instance: str, token: str, n: int) -> int:
    body = json.loads((FIXTURES / "moodle-local_webhooks-course_completed.json").read_text())
    body |= {"token": token, "objectid": 9000 + n}
    return httpx.post(f"{base}/events/moodle/{instance}", json=body).status_code


def anewspring(base: str, key: str, n: int) -> int:
    data = json.loads((FIXTURES / "anewspring-webhook.json").read_text()) | {"id": f"evt-{n}"}
    body = json.dumps(data).encode()
    headers = {
        "content-type": "application/json",
        "x-webhook-signature": anewspring_signature(key, body),
    }
    return httpx.post(f"{base}/events/anewspring/rot", content=body, headers=headers).status_code


def xapi(base: str, secret: str, n: int) -> int:
    body = (FIXTURES / "xapi-completed.json").read_bytes()
    stamp, msg_id = str(int(time.time())), f"rotation-{n}-{time.monotonic_ns()}"
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": standard_signature(secret, msg_id, stamp, body),
    }
    return httpx.post(f"{base}/events/xapi/rot", content=body, headers=headers).status_code


def test_the_previous_secret_is_accepted_through_its_date_for_every_signature_kind(
    api: str,
) -> None:
    accepted = (200, 202)
    assert moodle(api, "rot", SECRETS["MOODLE_NEW"], 1) in accepted
    assert moodle(api, "rot", SECRETS["MOODLE_OLD"], 2) in accepted
    assert moodle(api, "rot", "moodle-token-other-01", 3) == 401
    assert anewspring(api, SECRETS["ASP_NEW"], 1) in accepted
    assert anewspring(api, SECRETS["ASP_OLD"], 2) in accepted
    assert anewspring(api, "anewspring-key-other-01", 3) == 401
    assert xapi(api, SECRETS["XAPI_NEW"], 1) in accepted
    assert xapi(api, SECRETS["XAPI_OLD"], 2) in accepted
    assert xapi(api, whsec("xapi-secret-other-001"), 3) == 401


def test_a_previous_secret_past_its_date_is_refused(api: str) -> None:
    assert moodle(api, "gone", SECRETS["GONE_OLD"], 4) == 401
    assert moodle(api, "gone", SECRETS["GONE_NEW"], 5) in (200, 202)
