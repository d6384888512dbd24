"""Hypothesis-made events into `gradesync enqueue`'s intake and the ingress: never a crash or
a 5xx, never an invalid event recorded, every rejection names a field."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import fakeredis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradesync.event import CompletionEvent
from gradesync.ledger import Ledger
from gradesync.record import Record
from gradesync.settings import get_settings
from producers.api import create_app
from producers.intake import Intake
from producers.native import adapter
from producers.signatures import anewspring_signature, standard_signature
from tests.conftest import open_ingress_settings
from tests.unit.test_ingress import ASP, WHSEC
from tests.unit.test_ingress import settings as signing_settings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

FIELDS = list(CompletionEvent.model_fields)
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
plausible = {
    "source": st.sampled_from(["moodle", "ilias", "anewspring", "xapi", "blackboard", ""]),
    "person_id": st.one_of(st.text(max_size=10), st.integers()),
    "course_id": st.one_of(st.text(max_size=10), st.integers()),
    "grade": st.one_of(st.none(), st.text(max_size=40), st.floats(), st.integers()),
    "completed_at": st.one_of(
        st.datetimes().map(lambda d: d.isoformat()),
        st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
        st.integers(min_value=-(10**12), max_value=10**12),
        st.text(max_size=30),
    ),
}
events = st.fixed_dictionaries(
    {}, optional={**{f: junk for f in FIELDS}, **plausible, "extra_field": junk}
)


def check_ledger(ledger: Ledger) -> None:
    """Only valid events are stored, and every stored record loads back."""
    for record in ledger.newest(limit=10_000):
        assert isinstance(record, Record), record
        CompletionEvent.model_validate(record.event.model_dump())


def field_named(message: str, data: dict[str, Any]) -> bool:
    return any(name in message for name in [*FIELDS, *data, "(body)", "JSON object"])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=events)
def test_enqueue_intake_never_crashes(data: dict[str, Any]) -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    sent: list[str] = []
    (line,) = Intake(adapter(None, get_settings().sources), ledger, sent.append).take(1, data)
    if line["outcome"] == "rejected":
        assert field_named(line["error"], data), line
        assert sent == []
    else:
        assert len(sent) == 1
    check_ledger(ledger)


APP_LEDGER = Ledger(fakeredis.FakeRedis())
CLIENT = TestClient(create_app(APP_LEDGER, lambda rid: None, open_ingress_settings()))
SIGNED_LEDGER = Ledger(fakeredis.FakeRedis())
SIGNED = TestClient(create_app(SIGNED_LEDGER, lambda rid: None, signing_settings()))
KINDS = ("moodle", "xapi", "ilias", "anewspring")
# Each kind's default route, its installation's own route, and one naming no installation.
PATHS = [
    "/events",
    *(f"/events/{k}" for k in KINDS),
    *(f"/events/{k}/default" for k in KINDS),
    *(f"/events/{k}/no-such-installation" for k in KINDS),
]
header_text = st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=60)


def _signed_headers(path: str, body: bytes) -> dict[str, str]:
    if path.startswith("/events/anewspring"):
        return {"X-WebHook-Signature": anewspring_signature(ASP, body)}
    stamp = str(int(time.time()))
    msg_id = f"fuzz-{time.monotonic_ns()}"
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": standard_signature(WHSEC, msg_id, stamp, body),
    }


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=events, path=st.sampled_from(PATHS), signing=st.booleans())
def test_ingress_never_answers_5xx(data: dict[str, Any], path: str, signing: bool) -> None:
    body = json.dumps(data, default=str, allow_nan=True).encode()
    headers = {"content-type": "application/json"}
    if signing:
        client, ledger = SIGNED, SIGNED_LEDGER
        headers |= _signed_headers(path, body)
    else:
        client, ledger = CLIENT, APP_LEDGER
    response = client.post(path, content=body, headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code == 422:
        detail = response.json()["detail"]
        assert all(item["field"] for item in detail) if isinstance(detail, list) else detail
    check_ledger(ledger)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    path=st.sampled_from(PATHS),
    name=st.sampled_from(
        ["webhook-id", "webhook-timestamp", "webhook-signature", "X-WebHook-Signature"]
    ),
    value=header_text,
)
def test_signed_ingress_survives_fuzzed_auth_headers(path: str, name: str, value: str) -> None:
    body = (FIXTURES / "canonical.json").read_bytes()
    headers = {"content-type": "application/json", **_signed_headers(path, body), name: value}
    raw = [(k.encode(), v.encode("latin-1")) for k, v in headers.items()]
    response = SIGNED.post(path, content=body, headers=raw)
    assert response.status_code < 500, response.text


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=200))
def test_ingress_survives_arbitrary_bytes(raw: bytes) -> None:
    response = CLIENT.post("/events", content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text
