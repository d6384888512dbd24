"""schemathesis against the ingress's own OpenAPI: whatever it sends, never a 5xx.

Three ways in, each over every route: signing off (development: bodies reach validation
directly), signing on with the headers schemathesis makes up (the authentication path, header
fuzzing included), and signing on with each generated body correctly signed (bodies reach
validation through authentication, as an attacker who holds a secret would send them)."""

from __future__ import annotations

import base64
import json
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import fakeredis
import schemathesis
import yaml
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core import NOT_SET

from gradesync.ledger import Ledger
from gradesync.record import Record
from gradesync.settings import Settings
from producers.api import STANDARD_HEADERS, create_app
from producers.signatures import anewspring_signature, standard_signature
from tests.conftest import open_ingress_settings
from tests.unit.test_ingress import ASP, WHSEC
from tests.unit.test_ingress import settings as signing_settings

FIXTURES = Path(__file__).parent.parent / "fixtures"
NATIVE_SAMPLES = {
    "moodle": "moodle-local_webhooks-course_completed.json",
    "anewspring": "anewspring-webhook.json",
    "ilias": "ilias-updateStatus.json",
    "xapi": "xapi-completed.json",
}
EXAMPLES = 60
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

open_ledger = Ledger(fakeredis.FakeRedis())
open_app = create_app(open_ledger, lambda rid: None, open_ingress_settings())
signed_ledger = Ledger(fakeredis.FakeRedis())
signed_app = create_app(signed_ledger, lambda rid: None, signing_settings())
open_schema = schemathesis.openapi.from_asgi("/openapi.json", open_app)
signed_schema = schemathesis.openapi.from_asgi("/openapi.json", signed_app)
signed_client = TestClient(signed_app)


def _loads_back(ledger: Ledger) -> None:
    assert all(isinstance(r, Record) for r in ledger.newest(limit=10_000))


@open_schema.parametrize()
@FUZZ
def test_no_server_errors_signing_off(case: Any) -> None:
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, response.text[:300])
    _loads_back(open_ledger)


@signed_schema.parametrize()
@FUZZ
def test_no_server_errors_signing_on_with_fuzzed_headers(case: Any) -> None:
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, response.text[:300])
    if case.path.startswith("/events"):
        # 404: an instance segment naming no installation (schemathesis makes them up).
        refusals = (400, 401, 405, 409, 413, 415, 422) + ((404,) if _named(case) else ())
        assert response.status_code in refusals, response.text[:300]


def _named(case: Any) -> bool:
    """The route takes an instance segment (``/events/{kind}/{instance}``)."""
    return "{instance}" in case.operation.path


def _kind(case: Any) -> str:
    """The LMS kind of a native route; empty for ``/events`` and the rest."""
    parts = str(case.operation.path).split("/")
    return parts[2] if len(parts) > 2 and parts[1] == "events" else ""


def _signed(kind: str, body: Any, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    if kind == "moodle" and isinstance(body, dict):
        body = {**body, "token": "dev-moodle-token"}
    if body is NOT_SET:
        body = b""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    out = {**headers, "content-type": "application/json"}
    if kind == "anewspring":
        out["X-WebHook-Signature"] = anewspring_signature(ASP, raw)
    elif kind != "moodle":
        stamp = str(int(time.time()))
        msg_id = f"fuzz-{time.monotonic_ns()}"
        out |= {
            "webhook-id": msg_id,
            "webhook-timestamp": stamp,
            "webhook-signature": standard_signature(WHSEC, msg_id, stamp, raw),
        }
    return raw, out


@signed_schema.parametrize()
@FUZZ
def test_no_server_errors_signing_on_with_valid_signatures(case: Any) -> None:
    if case.method != "POST" or case.path.startswith("/xapi"):  # Basic auth: see below
        return
    auth = ("x-webhook-signature", *STANDARD_HEADERS)
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in auth}
    raw, headers = _signed(_kind(case), case.body, headers)
    response = signed_client.post(case.path, content=raw, headers=headers)
    assert response.status_code < 500, (case.path, response.text[:300])
    # Moodle's token travels inside the body: a body that is not an object cannot carry it.
    tokenless = _kind(case) == "moodle" and not isinstance(case.body, dict)
    assert tokenless or response.status_code != 401, (case.path, response.text[:300])
    _loads_back(signed_ledger)


INSTANCES = st.one_of(
    st.just("default"),
    st.text(min_size=1, max_size=80),
    st.text(alphabet="\u00e4\u202e\u0000\ud7ff\ufeff/%.", min_size=1, max_size=20),
    st.integers(1000, 20000).map(lambda n: "x" * n),
)


@FUZZ
@given(kind=st.sampled_from(["moodle", "anewspring", "ilias", "xapi"]), instance=INSTANCES)
def test_any_instance_segment_with_a_valid_signature_is_404_or_answered(
    kind: str, instance: str
) -> None:
    body = json.loads((FIXTURES / NATIVE_SAMPLES[kind]).read_text())
    raw, headers = _signed(kind, body, {})
    response = signed_client.post(
        f"/events/{kind}/{quote(instance, safe='')}", content=raw, headers=headers
    )
    assert response.status_code < 500, response.text[:300]
    # The client resolves dot segments, and Starlette's test client decodes the path a second
    # time ("%2561" arrives as "a", "%2F" as a slash): for those, no 5xx is all to hold to.
    if instance in (".", "..") or "/" in instance or "%" in instance:
        return
    if instance == "default":
        assert response.status_code in (200, 202), response.text[:300]
    else:
        assert response.status_code in (404, 414, 422), response.text[:300]


# -- the xAPI Statement endpoint with its own credentials (issue 24) ------------------------------

XAPI_LOGIN = ("fuzz-sender", "fuzz-xapi-password")
XAPI_HEADERS = {
    "authorization": "Basic " + base64.b64encode(":".join(XAPI_LOGIN).encode()).decode(),
    "x-experience-api-version": "1.0.3",
    "content-type": "application/json",
}


def _xapi_settings() -> Settings:
    login = {"username": XAPI_LOGIN[0], "password": XAPI_LOGIN[1]}
    path = Path(tempfile.mkdtemp(prefix="gradesync-fuzz-")) / "sources.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "installations": [
                    {"kind": "xapi", "basic_auth": login},
                    {
                        "kind": "xapi",
                        "instance": "lrs",
                        "course_pattern": "(?P<course>.+)",
                        "actor_id": "mbox",
                        "basic_auth": login,
                    },
                ]
            }
        )
    )
    return Settings(GRADESYNC_SOURCES=str(path), GRADESYNC_INSECURE_DEV="0")


xapi_ledger = Ledger(fakeredis.FakeRedis())
xapi_app = create_app(xapi_ledger, lambda rid: None, _xapi_settings())
xapi_schema = schemathesis.openapi.from_asgi("/openapi.json", xapi_app)
xapi_client = TestClient(xapi_app)


@xapi_schema.parametrize()
@FUZZ
def test_statement_routes_authenticated_never_answer_5xx(case: Any) -> None:
    """Each generated request to the xAPI routes, sent with the right credentials and version:
    never a 5xx, and the ledger still loads (the unauthenticated ones are fuzzed above)."""
    if not case.path.startswith("/xapi"):
        return
    body = b"" if case.body is NOT_SET else case.body
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = xapi_client.request(
        case.method, case.formatted_path, params=case.query, content=raw, headers=XAPI_HEADERS
    )
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
    assert response.headers["x-experience-api-version"] == "1.0.3"
    _loads_back(xapi_ledger)


TEXT = st.text(max_size=40)
IRI = st.one_of(
    TEXT,
    st.sampled_from(
        [
            "http://adlnet.gov/expapi/verbs/completed",
            "http://adlnet.gov/expapi/verbs/passed",
            "http://adlnet.gov/expapi/verbs/failed",
            "http://adlnet.gov/expapi/verbs/voided",
            "https://w3id.org/xapi/adl/verbs/satisfied",
        ]
    ),
)
NUMBER = st.one_of(st.integers(-(10**30), 10**30), st.floats(allow_nan=False), TEXT, st.none())
ACTOR = st.one_of(
    st.fixed_dictionaries({"mbox": st.one_of(TEXT, TEXT.map("mailto:{}".format))}),
    st.fixed_dictionaries({"account": st.fixed_dictionaries({"homePage": TEXT, "name": TEXT})}),
    st.fixed_dictionaries({"objectType": st.just("Group"), "member": st.lists(TEXT, max_size=2)}),
    st.dictionaries(TEXT, TEXT, max_size=3),
)
STATEMENT = st.fixed_dictionaries(
    {
        "actor": ACTOR,
        "verb": st.fixed_dictionaries({"id": IRI}),
        "object": st.fixed_dictionaries({"id": st.one_of(IRI, st.uuids().map(str))}),
    },
    optional={
        "id": st.one_of(st.uuids().map(str), TEXT),
        "timestamp": st.one_of(TEXT, st.datetimes().map(lambda d: d.isoformat())),
        "result": st.fixed_dictionaries(
            {},
            optional={
                "success": st.one_of(st.booleans(), TEXT),
                "score": st.fixed_dictionaries(
                    {}, optional={k: NUMBER for k in ("scaled", "raw", "min", "max")}
                ),
            },
        ),
        "context": st.fixed_dictionaries(
            {}, optional={"registration": st.one_of(st.uuids().map(str), TEXT)}
        ),
    },
)


@FUZZ
@given(
    batch=st.one_of(STATEMENT, st.lists(STATEMENT, max_size=5)),
    instance=st.sampled_from(["statements", "lrs/statements"]),
)
def test_any_statement_batch_is_answered_without_5xx(batch: Any, instance: str) -> None:
    """Statement-shaped batches (valid pieces and wrong ones mixed) through the whole path:
    answered 200, 400 or 409, never a 5xx; what the ledger holds loads back."""
    response = xapi_client.post(
        f"/xapi/{instance}", content=json.dumps(batch).encode(), headers=XAPI_HEADERS
    )
    assert response.status_code in (200, 400, 409), response.text[:300]
    _loads_back(xapi_ledger)
