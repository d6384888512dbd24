"""Hypothesis-made events into `gradesync enqueue`'s intake and the ingress: never a crash or
a 5xx, never an invalid event recorded, every rejection names a field."""

from __future__ import annotations

import json
from typing import Any

import fakeredis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradesync.event import CompletionEvent
from gradesync.ledger import Ledger, Record
from producers.api import create_app
from producers.intake import Intake
from producers.native import adapter
from tests.conftest import open_ingress_settings

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
    for record in ledger.list(limit=10_000):
        assert isinstance(record, Record), record
        CompletionEvent.model_validate(record.event.model_dump())


def field_named(message: str, data: dict[str, Any]) -> bool:
    return any(name in message for name in [*FIELDS, *data, "(body)", "JSON object"])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=events)
def test_enqueue_intake_never_crashes(data: dict[str, Any]) -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    sent: list[str] = []
    (line,) = Intake(adapter(None), ledger, sent.append).take(1, data)
    if line["outcome"] == "rejected":
        assert field_named(line["error"], data), line
        assert sent == []
    else:
        assert len(sent) == 1
    check_ledger(ledger)


APP_LEDGER = Ledger(fakeredis.FakeRedis())
CLIENT = TestClient(create_app(APP_LEDGER, lambda rid: None, open_ingress_settings()))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    data=events,
    path=st.sampled_from(
        ["/events", "/events/moodle", "/events/xapi", "/events/ilias", "/events/anewspring"]
    ),
)
def test_ingress_never_answers_5xx(data: dict[str, Any], path: str) -> None:
    body = json.dumps(data, default=str, allow_nan=True)
    response = CLIENT.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code < 500, response.text
    if response.status_code == 422:
        detail = response.json()["detail"]
        assert all(item["field"] for item in detail) if isinstance(detail, list) else detail
    check_ledger(APP_LEDGER)


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=200))
def test_ingress_survives_arbitrary_bytes(raw: bytes) -> None:
    response = CLIENT.post("/events", content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text
