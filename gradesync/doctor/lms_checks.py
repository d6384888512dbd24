"""Each configured LMS answers with the credentials given; each webhook secret is usable.

One cheap call per LMS: Moodle ``core_webservice_get_site_info`` (which also lists the
functions the token may call), ILIAS SOAP ``login`` (and ``logout``), an authenticated aNewSpring
GET of a result that does not exist (404 means the key was accepted).
"""

from __future__ import annotations

import httpx

from gradesync import http
from gradesync.doctor.model import Check, fail, ok, warn
from gradesync.errors import RemoteError, Transient
from gradesync.lms.anewspring import RESULT_PATH
from gradesync.lms.ilias import IliasSoap
from gradesync.lms.moodle import MoodleWS
from gradesync.settings import Settings

AREA = "lms"
SECRET_PREFIX = "GRADESYNC_WEBHOOK_SECRET_"
SOURCES = ("moodle", "ilias", "anewspring", "xapi", "canonical")
# What the worker calls (gradesync/lms/moodle.py); a token whose service lacks one fails there.
MOODLE_FUNCTIONS = (
    "gradereport_user_get_grade_items",
    "core_completion_get_course_completion_status",
    "core_user_get_users_by_field",
    "core_course_get_courses_by_field",
)
# A user and course no aNewSpring has: the answer says whether the key is accepted, nothing more.
PROBE_ID = "gradesync-doctor-probe"


def check(s: Settings, transport: httpx.BaseTransport | None = None) -> list[Check]:
    checks: list[Check] = []
    if s.moodle_url:
        checks.append(_moodle(s, transport))
    if s.ilias_soap_url:
        checks.append(_ilias(s, transport))
    if s.anewspring_url:
        checks.append(_anewspring(s, transport))
    if not checks:
        checks.append(ok(AREA, "LMS APIs", "none configured (events must carry their grade)"))
    return checks


def _unreachable(name: str, exc: RemoteError, url_var: str, secret_fix: str) -> Check:
    fix = url_var if isinstance(exc, Transient) else f"{secret_fix} (or {url_var})"
    return fail(AREA, name, exc.message, fix)


def _moodle(s: Settings, transport: httpx.BaseTransport | None) -> Check:
    name = "Moodle web services"
    if s.moodle_token is None:
        return fail(AREA, name, "MOODLE_URL is set but MOODLE_TOKEN is not", "MOODLE_TOKEN")
    assert s.moodle_url is not None
    ws = MoodleWS(s.moodle_url, s.moodle_token.get_secret_value(), transport=transport)
    try:
        info = ws.call("core_webservice_get_site_info")
    except RemoteError as exc:
        return _unreachable(name, exc, "MOODLE_URL", "MOODLE_TOKEN")
    if not isinstance(info, dict):
        return fail(AREA, name, "site info is not a JSON object", "MOODLE_URL")
    allowed = {str(f.get("name")) for f in info.get("functions") or [] if isinstance(f, dict)}
    lacking = [f for f in MOODLE_FUNCTIONS if f not in allowed]
    site = str(info.get("sitename") or "?")
    if lacking:
        return fail(
            AREA,
            name,
            f"{site}: the token's service lacks {', '.join(lacking)}",
            "Moodle: add these functions to the token's external service (MOODLE_TOKEN)",
        )
    return ok(AREA, name, f"{site}: token accepted, all {len(MOODLE_FUNCTIONS)} functions allowed")


def _ilias(s: Settings, transport: httpx.BaseTransport | None) -> Check:
    name = "ILIAS SOAP"
    if not s.ilias_user or s.ilias_password is None:
        return fail(
            AREA,
            name,
            "ILIAS_SOAP_URL is set without a user and password",
            "ILIAS_USER / ILIAS_PASSWORD",
        )
    assert s.ilias_soap_url is not None
    soap = IliasSoap(s.ilias_soap_url, transport=transport)
    try:
        sid = soap.login(s.ilias_client, s.ilias_user, s.ilias_password.get_secret_value())
        soap.logout(sid)
    except RemoteError as exc:
        return _unreachable(
            name, exc, "ILIAS_SOAP_URL", "ILIAS_USER / ILIAS_PASSWORD / ILIAS_CLIENT"
        )
    return ok(AREA, name, f"login as {s.ilias_user} on client {s.ilias_client}")


def _anewspring(s: Settings, transport: httpx.BaseTransport | None) -> Check:
    name = "aNewSpring API"
    if s.anewspring_api_key is None:
        return fail(
            AREA, name, "ANEWSPRING_URL is set but ANEWSPRING_API_KEY is not", "ANEWSPRING_API_KEY"
        )
    assert s.anewspring_url is not None
    path = RESULT_PATH.format(user=PROBE_ID, course=PROBE_ID)
    with httpx.Client(
        base_url=s.anewspring_url.rstrip("/"),
        timeout=10.0,
        transport=transport,
        headers={"X-API-Key": s.anewspring_api_key.get_secret_value()},
    ) as client:
        try:
            response = http.request(client, "GET", path)
        except Transient as exc:
            return fail(AREA, name, exc.message, "ANEWSPRING_URL")
    if response.status_code in (200, 404):
        return ok(AREA, name, "API key accepted")
    if response.status_code in (401, 403):
        return fail(AREA, name, f"HTTP {response.status_code}: key refused", "ANEWSPRING_API_KEY")
    return fail(AREA, name, f"HTTP {response.status_code}", "ANEWSPRING_URL")


def secrets(s: Settings, refused: dict[str, str]) -> list[Check]:
    """One line per ingress source: its secret is usable, refused, or absent."""
    checks: list[Check] = []
    for source in SOURCES:
        var = f"{SECRET_PREFIX}{source.upper()}"
        name = f"webhook secret {source}"
        if var in refused:
            checks.append(fail(AREA, name, f"refused: {refused[var]}", var))
        elif s.webhook_secret(source) is not None:
            checks.append(ok(AREA, name, "set and well-formed"))
        elif s.insecure_dev:
            checks.append(
                warn(AREA, name, "not set: accepted unsigned (GRADESYNC_INSECURE_DEV=1)", var)
            )
        else:
            route = "/events" if source == "canonical" else f"/events/{source}"
            checks.append(ok(AREA, name, f"not set: {route} is refused (401)"))
    return checks
