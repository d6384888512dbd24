"""Coachview: the right server, credentials that work, the fields gradesync relies on, the
day's budget, and (for the result link) a usable URL and secret.

A handful of requests, each one counted against Coachview's daily budget and reported. Reads
only: the result link is checked for its settings, never with a test POST (that would write).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from gradesync import http
from gradesync.coachview import api
from gradesync.coachview.budget import parse_reset
from gradesync.coachview.client import SIMULATOR_HEADER
from gradesync.doctor.model import Check, fail, ok, warn
from gradesync.errors import Permanent, RemoteError, Transient, UnexpectedResponse
from gradesync.settings import SIM_CLIENT_SECRET, SIM_RESULTLINK_SECRET, Settings, redacted_url
from gradesync.usage import budget_figure
from gradesync.webhook_secrets import MIN_KEY_BYTES

AREA = "coachview"
CREDENTIALS_FIX = (
    "COACHVIEW_CLIENT_ID / COACHVIEW_CLIENT_SECRET (Coachview: the API client's credentials"
    " and its rights)"
)
PARTICIPATION_FIELDS = (
    api.ParticipationField.ID,
    api.ParticipationField.COMPONENT_ID,
    api.ParticipationField.PERSON_ID,
    api.ParticipationField.RESULT,
    api.ParticipationField.ATTENDANCE,
    api.ParticipationField.PASSED,
    api.Audit.AUDIT,
)
REQUEST_COMPONENT_FIELDS = (
    api.RequestComponentField.ID,
    api.RequestComponentField.ENROLMENT_ID,
    api.RequestComponentField.COMPONENT_ID,
    api.RequestComponentField.PERSON_ID,
    api.RequestComponentField.COMPLETED,
    api.RequestComponentField.APPROVED,
    api.RequestComponentField.APPROVAL_DATE,
    api.Audit.AUDIT,
)
COMPONENT_FIELDS = (
    api.ComponentField.ID,
    api.ComponentField.TRAINING_ID,
    api.ComponentField.ELEARNING_CODE,
)
RATE_HEADERS = (api.RATE_LIMIT, api.RATE_REMAINING, api.RATE_RESET)
# Plain http never leaves the machine here (e.g. a local TLS-terminating tunnel).
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


class Probe:
    """An HTTP client that counts what it sends (each request spends Coachview's budget)."""

    def __init__(self, s: Settings, transport: httpx.BaseTransport | None) -> None:
        self.http = httpx.Client(
            base_url=s.coachview_base_url.rstrip("/"),
            timeout=s.coachview_timeout_s,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "gradesync-doctor"},
        )
        self.sent = 0

    def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = http.request(self.http, method, url, **kwargs)
        self.sent += 1  # only what reached a server can count against its budget
        return response


def check(s: Settings, transport: httpx.BaseTransport | None = None) -> tuple[list[Check], int]:
    """The checks, and how many Coachview requests they cost."""
    checks = [_base_url(s)]
    if s.coachview_delivery == "resultlink":
        checks += _result_link(s)
    if checks[0].status == "fail":
        return checks, 0  # never send the client secret to a URL that failed its check
    probe = Probe(s, transport)
    try:
        checks += _live(s, probe)
    finally:
        probe.http.close()
    return checks, probe.sent


def _base_url(s: Settings) -> Check:
    try:
        url = urlsplit(s.coachview_base_url)
        url.port  # noqa: B018  (parsing the port is what raises for "http://[::1")
    except ValueError:
        return fail(AREA, "base URL", "not a URL", "COACHVIEW_BASE_URL")
    if url.scheme not in ("http", "https") or not url.hostname:
        return fail(AREA, "base URL", "not an http(s) URL with a host", "COACHVIEW_BASE_URL")
    if url.scheme != "https" and not s.insecure_dev and url.hostname not in LOOPBACK:
        return fail(
            AREA,
            "base URL",
            f"{url.scheme}://{url.hostname}: credentials and grades would travel unencrypted",
            "COACHVIEW_BASE_URL (https://…)",
        )
    return ok(AREA, "base URL", redacted_url(f"{url.scheme}://{url.netloc}"))


def _live(s: Settings, probe: Probe) -> list[Check]:
    try:
        response = probe.send(
            "POST",
            api.TOKEN_PATH,
            data=api.token_form(
                s.coachview_client_id,
                s.coachview_client_secret.get_secret_value(),
                s.coachview_scope,
            ),
        )
    except Transient as exc:
        return [fail(AREA, "reachable", exc.message, "COACHVIEW_BASE_URL")]
    checks = [_simulator(s, response)]
    try:
        body = http.json_body(response, "token", dict)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise UnexpectedResponse("token: no access_token in the answer")
    except RemoteError as exc:
        # OAuth2's invalid_scope: one scope the client may not have refuses the whole request.
        named = _scopes(s, probe) if "invalid_scope" in response.text else []
        return [*checks, _remote_failure("token", exc), *named]
    checks.append(ok(AREA, "token", "issued for COACHVIEW_CLIENT_ID"))
    if not s.insecure_dev and s.coachview_client_secret.get_secret_value() == SIM_CLIENT_SECRET:
        checks.append(
            warn(
                AREA,
                "client secret",
                "the simulator's dev secret is in use",
                "COACHVIEW_CLIENT_SECRET",
            )
        )
    auth = {"Authorization": f"Bearer {token}"}
    checks.append(_example_values(probe, auth))
    person_fields = (api.PersonField.ID, *[f for f in s.person_match_order if f != "id"])
    last: httpx.Response | None = None
    for name, path, fields in (
        ("persons", api.PERSONS, person_fields),
        ("components", api.COMPONENTS, COMPONENT_FIELDS),
        ("participations", api.PARTICIPATIONS, PARTICIPATION_FIELDS),
        ("request components", api.REQUEST_COMPONENTS, REQUEST_COMPONENT_FIELDS),
    ):
        read, answered = _read(probe, name, path, fields, auth)
        checks.append(read)
        last = answered or last
    if last is not None:
        checks.append(_budget(s, last))
    return checks


def _scopes(s: Settings, probe: Probe) -> list[Check]:
    """After a refused token: each scope of COACHVIEW_SCOPE asked alone beside ``api`` (a token
    request fails as a whole on one scope the client may not have), naming the refused ones;
    nothing when they are all granted (the credentials are what is wrong)."""
    named = [x for x in s.coachview_scope.split() if x != "api"]
    if not named:
        return []
    refused: list[str] = []
    for scope in named:
        form = api.token_form(
            s.coachview_client_id, s.coachview_client_secret.get_secret_value(), f"api {scope}"
        )
        try:
            http.json_body(probe.send("POST", api.TOKEN_PATH, data=form), "token", dict)
        except RemoteError:
            refused.append(scope)
    if not refused:
        return []
    return [
        fail(
            AREA,
            "scopes",
            f"a token is refused with {', '.join(refused)} (each asked alone beside api)",
            "COACHVIEW_SCOPE (remove them), or grant them to the client in Coachview",
        )
    ]


# An external id no person has: a Coachview answering a person for it answers example values
# (its answers without the entity's scope: every public id the same).
EXAMPLE_PROBE = "gradesync-doctor-probe"


def _example_values(probe: Probe, auth: dict[str, str]) -> Check:
    try:
        params = {"where": f"externId={EXAMPLE_PROBE}"}
        response = probe.send("GET", api.PERSONS, params=params, headers=auth)
        rows = http.json_body(response, "persons", list)
    except RemoteError as exc:
        return _remote_failure("example values", exc)
    if rows:
        return fail(
            AREA,
            "example values",
            "a look-up of an external id nobody has answered a person: Coachview answers "
            "example values",
            "COACHVIEW_SCOPE: add Personen.Lezen (and grant it to the client in Coachview)",
        )
    return ok(AREA, "example values", "a person look-up answers what it asks")


def _simulator(s: Settings, response: httpx.Response) -> Check:
    if SIMULATOR_HEADER not in response.headers:
        return ok(AREA, "not the simulator", "no simulator marker in the answers")
    if s.insecure_dev:
        return warn(
            AREA,
            "not the simulator",
            "this is gradesync's simulator (allowed: GRADESYNC_INSECURE_DEV=1)",
            "COACHVIEW_BASE_URL before going live",
        )
    return fail(
        AREA,
        "not the simulator",
        "COACHVIEW_BASE_URL is gradesync's simulator: workers refuse to deliver into it",
        "COACHVIEW_BASE_URL (the real Coachview), or GRADESYNC_INSECURE_DEV=1 for development",
    )


def _remote_failure(name: str, exc: RemoteError) -> Check:
    if isinstance(exc, UnexpectedResponse):  # HTML, a redirect, another service
        return fail(AREA, name, exc.message, "COACHVIEW_BASE_URL (it does not answer as Coachview)")
    if isinstance(exc, Permanent) and exc.code in ("http_400", "http_401", "http_403"):
        return fail(AREA, name, exc.message, CREDENTIALS_FIX)
    if isinstance(exc, Permanent) and exc.code == "http_404":
        return fail(AREA, name, exc.message, "COACHVIEW_BASE_URL (no such API path there)")
    return fail(AREA, name, exc.message, "try again later; if it stays, COACHVIEW_BASE_URL")


def _read(
    probe: Probe, name: str, path: str, fields: Sequence[str], auth: dict[str, str]
) -> tuple[Check, httpx.Response | None]:
    """One row of a collection: does it carry every field gradesync reads?"""
    label = f"read {path.rsplit('/', 1)[-1]}"
    try:
        response = probe.send("GET", path, params={"take": 1}, headers=auth)
        rows = http.json_body(response, name, list)
    except RemoteError as exc:
        return _remote_failure(label, exc), None
    if not rows:
        return warn(AREA, label, "no rows: the fields could not be checked", ""), response
    row = rows[0]
    if not isinstance(row, dict):
        return fail(AREA, label, "rows are not JSON objects", "COACHVIEW_BASE_URL"), response
    missing = [_missing(field, row) for field in fields if field not in row]
    if api.Audit.AUDIT in fields and api.Audit.AUDIT in row:
        audit = row[api.Audit.AUDIT]
        if not isinstance(audit, dict) or api.Audit.ETAG not in audit:
            missing.append(f"{api.Audit.AUDIT}.{api.Audit.ETAG}")
    if missing:
        return fail(
            AREA,
            label,
            "missing or renamed: " + ", ".join(missing),
            "Coachview: give the API client read access to these fields; if Coachview renamed "
            "them, gradesync/coachview/api.py must follow (report it)",
        ), response
    return ok(AREA, label, f"{len(fields)} fields present"), response


def _missing(field: str, row: dict[str, Any]) -> str:
    close = difflib.get_close_matches(field, [str(k) for k in row], n=1, cutoff=0.6)
    return f"{field} (is it {close[0]}?)" if close else field


def _budget(s: Settings, response: httpx.Response) -> Check:
    absent = [h for h in RATE_HEADERS if h not in response.headers]
    if absent:
        return warn(
            AREA,
            "daily budget",
            f"no {', '.join(absent)} header: gradesync cannot pace itself to the 5,000/day limit",
            "ask Coachview support whether this API client gets rate-limit headers",
        )
    remaining, limit = response.headers[api.RATE_REMAINING], response.headers[api.RATE_LIMIT]
    reset = parse_reset(response.headers[api.RATE_RESET], datetime.now(UTC).timestamp())
    when = (
        "unknown" if reset is None else datetime.fromtimestamp(reset, UTC).isoformat("T", "minutes")
    )
    try:
        left = int(float(remaining))
        text = budget_figure(left, s.coachview_budget_reserve, int(float(limit)))
    except ValueError:
        said = f"{remaining} of {limit} requests left"
        return warn(AREA, "daily budget", f"unreadable {api.RATE_REMAINING}: {said}", "")
    text += f", resets {when}"
    if left <= s.coachview_budget_reserve:
        return warn(
            AREA,
            "daily budget",
            text + ": deliveries wait for the reset",
            "COACHVIEW_BUDGET_RESERVE, or spread the load (COACHVIEW_RATE_LIMIT_PER_S)",
        )
    return ok(AREA, "daily budget", text)


def _result_link(s: Settings) -> list[Check]:
    secret = s.coachview_resultlink_secret.get_secret_value()
    checks = [ok(AREA, "result link URL", f"{s.coachview_base_url.rstrip('/')}{api.RESULT_LINK}")]
    key = s.coachview_resultlink_plugin_key
    if not key.strip() or any(ch.isspace() for ch in key):
        checks.append(
            fail(
                AREA,
                "result link plugin",
                "empty or contains spaces",
                "COACHVIEW_RESULTLINK_PLUGIN_KEY",
            )
        )
    if secret == SIM_RESULTLINK_SECRET and not s.insecure_dev:
        checks.append(
            fail(
                AREA,
                "result link secret",
                "still the simulator's dev secret",
                "COACHVIEW_RESULTLINK_SECRET (Coachview: the e-learning koppeling's secret)",
            )
        )
    elif len(secret.encode()) < MIN_KEY_BYTES or secret != secret.strip():
        checks.append(
            fail(
                AREA,
                "result link secret",
                f"shorter than {MIN_KEY_BYTES} bytes or padded with spaces",
                "COACHVIEW_RESULTLINK_SECRET",
            )
        )
    else:
        checks.append(ok(AREA, "result link secret", "set"))
    return checks
