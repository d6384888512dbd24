"""Each configured LMS answers with the credentials given; each webhook secret is usable.

One cheap call per LMS: Moodle ``core_webservice_get_site_info`` (which also lists the
functions the token may call), ILIAS SOAP ``login`` (and ``logout``), an authenticated aNewSpring
GET of a result that does not exist (404 means the key was accepted).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

import httpx

from gradesync import http
from gradesync.doctor.model import Check, fail, ok, warn
from gradesync.errors import RemoteError, Transient
from gradesync.lms.anewspring import RESULTS_PATH
from gradesync.lms.ilias import IliasSoap
from gradesync.lms.moodle import MoodleWS
from gradesync.settings import Settings, ignored_variables, persoonid_matching_off
from gradesync.sources import (
    ANewSpringSource,
    Api,
    IliasSource,
    Installation,
    MoodleSource,
    XapiSource,
)

AREA = "lms"
SECRET_PREFIX = "GRADESYNC_WEBHOOK_SECRET_"
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
    """One check per installation with an API (named ``… kind/instance``), and one for an
    ILIAS installation whose API has no user (its poller does not run)."""
    checks: list[Check] = []
    for inst in s.sources.installations:
        if isinstance(inst, IliasSource) and inst.api is not None and inst.user is None:
            checks.append(
                fail(
                    AREA,
                    f"ILIAS SOAP {inst.name}",
                    "an api without a user: the poller does not run",
                    _where(s, inst, "user"),
                )
            )
        elif isinstance(inst, MoodleSource) and inst.api is not None:
            checks.append(_moodle(s, inst, inst.api, transport))
        elif isinstance(inst, IliasSource) and inst.api is not None:
            checks.append(_ilias(s, inst, inst.api, transport))
        elif isinstance(inst, ANewSpringSource) and inst.api is not None:
            checks.append(_anewspring(s, inst, inst.api, transport))
    if not checks:
        detail = f"none configured ({_without_api(s)})"
        fetching = [
            i.name for i in s.sources.installations if getattr(i, "grade_policy", "") == "fetch"
        ]
        checks.append(
            warn(
                AREA,
                "LMS APIs",
                detail,
                f"give {', '.join(fetching)} an API, or grade_policy completion_only / event",
            )
            if fetching
            else ok(AREA, "LMS APIs", detail)
        )
    return checks


def _without_api(s: Settings) -> str:
    """Where the grades come from when no installation has an API. ``fetch`` needs one; only
    development (GRADESYNC_INSECURE_DEV=1) starts without it, and says what that costs."""
    by_policy: dict[str, list[str]] = {}
    for inst in s.sources.installations:
        by_policy.setdefault(getattr(inst, "grade_policy", "event"), []).append(inst.name)
    said = {
        "event": "grades come in their events",
        "completion_only": "completion_only: completions are delivered without a grade",
        "fetch": "fetch, but no API: a completion without a grade in its event fails "
        "(lms_api_not_configured)",
    }
    return "; ".join(f"{', '.join(names)}: {said[p]}" for p, names in by_policy.items())


def person_match(s: Settings) -> list[Check]:
    """Installations whose learners are matched without Coachview's PersoonId (see
    Settings.person_match_for): said, since a deployment relying on PersoonIds must set it."""
    return [
        warn(AREA, "person match", note, "COACHVIEW_PERSON_MATCH (or person_field)")
        for note in persoonid_matching_off(s)
    ]


def ignored(s: Settings, environ: Mapping[str, str]) -> list[Check]:
    """Per-kind variables the sources file makes unread: set, they look as if they counted."""
    names = ignored_variables(s, environ)
    if not names:
        return []
    return [
        warn(
            AREA,
            "per-kind variables",
            f"set but not read (GRADESYNC_SOURCES is set): {', '.join(names)}",
            f"unset them, or name them in {s.sources_path} (secret_env / credential_env)",
        )
    ]


# Where each installation field comes from when the sources are today's variables.
_ENV_FIELDS = {
    ("moodle", "api.url"): "MOODLE_URL",
    ("moodle", "api.credential"): "MOODLE_TOKEN",
    ("ilias", "api.url"): "ILIAS_SOAP_URL",
    ("ilias", "api.credential"): "ILIAS_USER / ILIAS_PASSWORD / ILIAS_CLIENT",
    ("ilias", "user"): "ILIAS_USER",
    ("anewspring", "api.url"): "ANEWSPRING_URL",
    ("anewspring", "api.credential"): "ANEWSPRING_API_KEY",
}


def _where(s: Settings, inst: Installation, field: str) -> str:
    """What the operator edits: the variable, or the entry and field in the sources file."""
    if s.sources.from_environment:
        return _ENV_FIELDS[(inst.kind, field)]
    return f"{s.sources_path}: {inst.name} {field}"


def _unreachable(s: Settings, inst: Installation, name: str, exc: RemoteError) -> Check:
    url = _where(s, inst, "api.url")
    fix = url if isinstance(exc, Transient) else f"{_where(s, inst, 'api.credential')} (or {url})"
    return fail(AREA, name, exc.message, fix)


def _moodle(
    s: Settings, inst: MoodleSource, api: Api, transport: httpx.BaseTransport | None
) -> Check:
    name = f"Moodle web services {inst.name}"
    ws = MoodleWS(api.url, api.secret(), transport=transport)
    try:
        info = ws.call("core_webservice_get_site_info")
    except RemoteError as exc:
        return _unreachable(s, inst, name, exc)
    if not isinstance(info, dict):
        return fail(AREA, name, "site info is not a JSON object", _where(s, inst, "api.url"))
    allowed = {str(f.get("name")) for f in info.get("functions") or [] if isinstance(f, dict)}
    lacking = [f for f in MOODLE_FUNCTIONS if f not in allowed]
    site = str(info.get("sitename") or "?")
    if lacking:
        return fail(
            AREA,
            name,
            f"{site}: the token's service lacks {', '.join(lacking)}",
            "Moodle: add these functions to the token's external service "
            f"({_where(s, inst, 'api.credential')})",
        )
    accepted = f"{site}: token accepted, all {len(MOODLE_FUNCTIONS)} functions allowed"
    # Moodle (user/lib.php ``user_get_user_details``) shows users their own idnumber whatever
    # their role, and leaves an empty one out: no user the doctor can name tells whether the
    # token sees learners' numbers. A site admin's token sees every field (site info says so).
    if inst.person_key != "id" and info.get("userissiteadmin") is not True:
        return warn(
            AREA,
            name,
            f"{accepted}; whether it sees learners' {inst.person_key} cannot be asked",
            f"Moodle: give the token's role moodle/user:viewalldetails (or add "
            f"{inst.person_key} to the site's identity fields)",
        )
    return ok(AREA, name, accepted)


def _ilias(
    s: Settings, inst: IliasSource, api: Api, transport: httpx.BaseTransport | None
) -> Check:
    name = f"ILIAS SOAP {inst.name}"
    assert inst.user is not None  # check() reports an api without a user instead
    soap = IliasSoap(api.url, transport=transport)
    try:
        sid = soap.login(inst.client, inst.user, api.secret())
        soap.logout(sid)
    except RemoteError as exc:
        return _unreachable(s, inst, name, exc)
    return ok(AREA, name, f"login as {inst.user} on client {inst.client}")


def _anewspring(
    s: Settings, inst: ANewSpringSource, api: Api, transport: httpx.BaseTransport | None
) -> Check:
    name = f"aNewSpring API {inst.name}"
    path = RESULTS_PATH.format(user=PROBE_ID)
    with httpx.Client(
        base_url=api.url.rstrip("/"),
        timeout=10.0,
        transport=transport,
        headers={"X-API-Key": api.secret()},
    ) as client:
        try:
            response = http.request(client, "GET", path)
        except Transient as exc:
            return fail(AREA, name, exc.message, _where(s, inst, "api.url"))
    if response.status_code in (200, 404):
        return ok(AREA, name, "API key accepted")
    if response.status_code in (401, 403):
        key = _where(s, inst, "api.credential")
        return fail(AREA, name, f"HTTP {response.status_code}: key refused", key)
    return fail(AREA, name, f"HTTP {response.status_code}", _where(s, inst, "api.url"))


def secrets(s: Settings, refused: dict[str, str], today: date | None = None) -> list[Check]:
    """One line per installation, and one for the canonical route: its secret is usable,
    refused, or absent; a previous secret's expiry (``today``: UTC, now by default); a disabled
    installation says so."""
    checks: list[Check] = []
    for inst in s.sources.installations:
        var = f"{SECRET_PREFIX}{inst.kind.upper()}"
        where = var if s.sources.from_environment else f"{s.sources_path}: {inst.name} secret_env"
        route = f"/events/{inst.kind}/{inst.instance}"
        checks.append(
            _secret(
                s,
                f"webhook secret {inst.name}",
                inst.webhook_secret(),
                refused.get(var),
                where,
                route,
            )
        )
        if isinstance(inst, XapiSource):
            checks.append(_statement_endpoint(s, inst))
        if inst.previous_secret_expires is not None:
            checks.append(_previous_secret(s, inst, today or datetime.now(UTC).date()))
        if not inst.enabled:
            checks.append(
                warn(
                    AREA,
                    f"installation {inst.name}",
                    f"disabled: {route} answers 503 (Retry-After), its queued records wait",
                    f"{s.sources_path}: {inst.name} enabled",
                )
            )
    var = f"{SECRET_PREFIX}CANONICAL"
    checks.append(
        _secret(
            s,
            "webhook secret canonical",
            s.webhook_secret("canonical"),
            refused.get(var),
            var,
            "/events",
        )
    )
    return checks


def _statement_endpoint(s: Settings, inst: XapiSource) -> Check:
    """The xAPI Statement endpoint's HTTP Basic login (issue 24)."""
    name = f"xAPI Statement endpoint {inst.name}"
    route = (
        "/xapi/statements" if inst.instance == "default" else f"/xapi/{inst.instance}/statements"
    )
    if inst.basic_auth is not None:
        return ok(AREA, name, f"{route}: Basic auth as {inst.basic_auth.username}")
    where = f"{s.sources_path}: {inst.name} basic_auth" if s.sources_path else "GRADESYNC_SOURCES"
    if s.insecure_dev:
        return warn(AREA, name, f"{route}: no basic_auth, open (GRADESYNC_INSECURE_DEV=1)", where)
    return ok(AREA, name, f"{route}: no basic_auth, refused (401)")


def _previous_secret(s: Settings, inst: Installation, today: date) -> Check:
    """While rotating: until when the previous secret is still accepted; once expired, a
    reminder to take it out of the sources file (it is no longer accepted)."""
    expires = inst.previous_secret_expires
    assert expires is not None
    name = f"previous secret {inst.name}"
    where = f"{s.sources_path}: {inst.name} previous_secret_env, previous_secret_expires"
    left = (expires - today).days
    if left < 0:
        return warn(AREA, name, f"expired on {expires.isoformat()}: no longer accepted", where)
    detail = f"{inst.previous_secret_env} accepted through {expires.isoformat()} (UTC)"
    if left <= 7:
        return warn(AREA, name, f"{detail}: {left} day(s) left; move every sender over", where)
    return ok(AREA, name, f"{detail}, {left} days left")


def _secret(
    s: Settings, name: str, secret: str | None, refusal: str | None, where: str, route: str
) -> Check:
    if refusal is not None:
        return fail(AREA, name, f"refused: {refusal}", where)
    if secret is not None:
        return ok(AREA, name, "set and well-formed")
    if s.insecure_dev:
        return warn(AREA, name, "not set: accepted unsigned (GRADESYNC_INSECURE_DEV=1)", where)
    return ok(AREA, name, f"not set: {route} is refused (401)")
