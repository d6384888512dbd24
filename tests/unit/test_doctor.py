"""`gradesync doctor`'s checks, in process: the Coachview simulator and the fake LMS through
their ASGI apps, hand-made answers for what a wrong Coachview says, fakeredis for Celery, and
the Redis verdicts as a pure function. Every broken configuration shows its ✗ and its fix."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fakeredis
import httpx
import pytest
from fastapi.testclient import TestClient

import celeryconfig
from coachview_sim.app import create_app as create_sim
from gradesync.doctor import celery_checks, coachview_checks, config, lms_checks, redis_checks
from gradesync.doctor.model import Check
from gradesync.doctor.redis_checks import RedisFacts
from gradesync.doctor.runner import diagnose, redis_location
from gradesync.settings import ConfigurationError, Settings
from tests.fakes.lms import create_app as create_lms

SEED = json.loads((Path(__file__).parent.parent / "fixtures" / "coachview-seed.json").read_text())
BASE = "https://coachview.test"
LMS = "https://lms.test"


def settings(**env: Any) -> Settings:
    base = {
        "COACHVIEW_BASE_URL": BASE,
        "MOODLE_URL": LMS,
        "ANEWSPRING_URL": LMS,
        "ILIAS_SOAP_URL": f"{LMS}/webservice/soap/server.php",
    }
    return Settings(**(base | env))


def named(checks: list[Check], name: str) -> Check:
    (found,) = [c for c in checks if c.name == name]
    return found


def in_process(client: TestClient) -> httpx.BaseTransport:
    """The ASGI app behind a sync httpx transport, for clients that take a ``transport``."""
    transport: httpx.BaseTransport = client._transport
    return transport


def sim_transport(seed: dict[str, Any] | None = SEED) -> httpx.BaseTransport:
    client = TestClient(create_sim())
    if seed is not None:
        client.post("/_sim/seed", json=seed).raise_for_status()
    return in_process(client)


def answering(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


TOKEN = httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
RATE = {"X-Rate-Limit-Limit": "5000", "X-Rate-Limit-Remaining": "4990", "X-Rate-Limit-Reset": "60"}


# -- Coachview -------------------------------------------------------------------------------


def test_the_simulator_in_development_passes_in_six_requests() -> None:
    checks, spent = coachview_checks.check(settings(), sim_transport())
    assert spent == 6  # token, the example-values probe, four reads
    assert named(checks, "not the simulator").status == "warn"
    others = [c for c in checks if c.name != "not the simulator"]
    assert all(c.status == "ok" for c in others), others
    assert "above the reserve of" in named(checks, "daily budget").detail
    assert "(daily limit 5000)" in named(checks, "daily budget").detail


def test_coachviews_example_values_fail_naming_the_scope_to_add() -> None:
    client = TestClient(create_sim())
    client.post("/_sim/seed", json=SEED).raise_for_status()
    client.post("/_sim/config", json={"example_values": True}).raise_for_status()
    checks, _ = coachview_checks.check(settings(), in_process(client))
    found = named(checks, "example values")
    assert found.status == "fail" and "Personen.Lezen" in found.fix


def test_a_refused_scope_is_named_by_asking_each_alone() -> None:
    def coachview(request: httpx.Request) -> httpx.Response:
        scopes = dict(httpx.QueryParams(request.content.decode())).get("scope", "").split()
        if "Opleidingsvraagonderdelen.Schrijven" in scopes:
            return httpx.Response(400, json={"error": "invalid_scope"})
        return TOKEN

    checks, spent = coachview_checks.check(settings(), answering(coachview))
    assert named(checks, "token").status == "fail"
    found = named(checks, "scopes")
    assert found.status == "fail" and "Opleidingsvraagonderdelen.Schrijven" in found.detail
    assert "Personen.Lezen" not in found.detail
    assert spent == 1 + 6  # the token, then each of the six entity scopes alone


def test_the_simulator_outside_development_fails_naming_the_base_url() -> None:
    checks, _ = coachview_checks.check(settings(GRADESYNC_INSECURE_DEV="0"), sim_transport())
    found = named(checks, "not the simulator")
    assert found.status == "fail" and "COACHVIEW_BASE_URL" in found.fix
    assert named(checks, "token").status == "ok"  # the other checks still run


def test_plain_http_outside_development_fails() -> None:
    s = settings(COACHVIEW_BASE_URL="http://coachview.test", GRADESYNC_INSECURE_DEV="0")
    checks, spent = coachview_checks.check(s, sim_transport())
    assert named(checks, "base URL").status == "fail"
    assert "COACHVIEW_BASE_URL" in named(checks, "base URL").fix
    assert spent == 0  # the client secret is not sent over plain http


def test_a_wrong_client_secret_fails_the_token_and_stops_after_one_request() -> None:
    s = settings(COACHVIEW_CLIENT_SECRET="not-the-secret")
    checks, spent = coachview_checks.check(s, sim_transport())
    token = named(checks, "token")
    assert token.status == "fail" and "COACHVIEW_CLIENT_SECRET" in token.fix
    assert spent == 1
    assert not [c for c in checks if c.name.startswith("read ")]


def test_a_login_page_at_the_base_url_fails_naming_it() -> None:
    page = b"<html><head><title>Sign in - proxy</title></head></html>"
    transport = answering(
        lambda r: httpx.Response(200, content=page, headers={"content-type": "text/html"})
    )
    checks, _ = coachview_checks.check(settings(), transport)
    token = named(checks, "token")
    assert token.status == "fail"
    assert "Sign in - proxy" in token.detail and "COACHVIEW_BASE_URL" in token.fix


def test_an_unreachable_coachview_fails_naming_the_base_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    checks, spent = coachview_checks.check(settings(), answering(refuse))
    assert named(checks, "reachable").fix == "COACHVIEW_BASE_URL"
    assert spent == 0


def renamed_coachview(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path.endswith("/token"):
        return TOKEN
    if path.endswith("/Personen"):
        return httpx.Response(200, json=[{"id": 1, "externalId": "57"}])
    if path.endswith("/Opleidingsonderdelen"):
        return httpx.Response(200, json=[{"id": 9, "opleidingId": 5}], headers=RATE)
    return httpx.Response(200, json=[], headers=RATE)


def test_missing_and_renamed_fields_are_named_each() -> None:
    checks, spent = coachview_checks.check(settings(), answering(renamed_coachview))
    persons = named(checks, "read Personen")
    assert persons.status == "fail"
    assert "externId (is it externalId?)" in persons.detail
    components = named(checks, "read Opleidingsonderdelen")
    assert components.status == "fail" and "elearningCode" in components.detail
    assert named(checks, "read Opleidingsvraagonderdelen").status == "warn"  # no rows
    assert named(checks, "read Opleidingsonderdeeluitvoeringen").status == "warn"
    assert named(checks, "not the simulator").status == "ok"
    assert spent == 6


def test_an_enrolment_component_without_its_etag_is_named() -> None:
    seeded = sim_transport()

    def strip_etag(request: httpx.Request) -> httpx.Response:
        response = seeded.handle_request(request)
        if not request.url.path.endswith("/Opleidingsvraagonderdelen"):
            return response
        response.read()
        rows = [
            {k: v for k, v in r.items() if k != "auditTrail"} | {"auditTrail": {}}
            for r in response.json()
        ]
        return httpx.Response(200, json=rows, headers=RATE)

    checks, _ = coachview_checks.check(settings(), answering(strip_etag))
    found = named(checks, "read Opleidingsvraagonderdelen")
    assert found.status == "fail" and "auditTrail.etag" in found.detail


def test_missing_rate_limit_headers_warn() -> None:
    def no_headers(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return TOKEN
        return httpx.Response(200, json=[])

    checks, _ = coachview_checks.check(settings(), answering(no_headers))
    budget = named(checks, "daily budget")
    assert budget.status == "warn" and "X-Rate-Limit-Remaining" in budget.detail


def test_a_spent_budget_warns() -> None:
    def spent(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return TOKEN
        return httpx.Response(200, json=[], headers=RATE | {"X-Rate-Limit-Remaining": "2"})

    checks, _ = coachview_checks.check(settings(COACHVIEW_BUDGET_RESERVE="25"), answering(spent))
    assert named(checks, "daily budget").status == "warn"


def test_result_link_settings_are_checked_without_posting() -> None:
    posted: list[str] = []
    seeded = sim_transport()

    def watch(request: httpx.Request) -> httpx.Response:
        posted.append(request.url.path)
        return seeded.handle_request(request)

    dev_secret = settings(COACHVIEW_DELIVERY="resultlink", GRADESYNC_INSECURE_DEV="0")
    checks, _ = coachview_checks.check(dev_secret, answering(watch))
    secret = named(checks, "result link secret")
    assert secret.status == "fail" and secret.fix.startswith("COACHVIEW_RESULTLINK_SECRET")
    short = settings(COACHVIEW_DELIVERY="resultlink", COACHVIEW_RESULTLINK_SECRET="abc")
    assert (
        named(coachview_checks.check(short, answering(watch))[0], "result link secret").status
        == "fail"
    )
    spaced = settings(COACHVIEW_DELIVERY="resultlink", COACHVIEW_RESULTLINK_PLUGIN_KEY="my key")
    assert (
        named(coachview_checks.check(spaced, answering(watch))[0], "result link plugin").status
        == "fail"
    )
    good = settings(COACHVIEW_DELIVERY="resultlink", COACHVIEW_RESULTLINK_SECRET="x" * 32)
    assert (
        named(coachview_checks.check(good, answering(watch))[0], "result link secret").status
        == "ok"
    )
    assert not [p for p in posted if "result" in p]


# -- LMS -------------------------------------------------------------------------------------


def test_no_api_with_the_default_fetch_policy_in_development_is_said_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Development starts with the default grade policy and no LMS API: doctor says what
    that costs (it raised KeyError: 'fetch')."""
    for name in ("MOODLE_URL", "ANEWSPRING_URL", "ILIAS_SOAP_URL"):
        monkeypatch.delenv(name)
    bare = Settings(COACHVIEW_BASE_URL=BASE, GRADESYNC_INSECURE_DEV="1")
    found = named(lms_checks.check(bare), "LMS APIs")
    assert found.status == "warn" and "anewspring/default: fetch, but no API" in found.detail
    assert found.fix.startswith("give moodle/default, anewspring/default an API")


@pytest.fixture
def lms() -> httpx.BaseTransport:
    return in_process(TestClient(create_lms()))


def test_every_configured_lms_answers_with_the_credentials_given(lms: httpx.BaseTransport) -> None:
    checks = lms_checks.check(settings(), lms)
    assert [c.name for c in checks] == [
        "Moodle web services moodle/default",
        "ILIAS SOAP ilias/default",
        "aNewSpring API anewspring/default",
    ]
    assert all(c.status == "ok" for c in checks), checks


def test_a_bad_moodle_token_fails_naming_it(lms: httpx.BaseTransport) -> None:
    found = named(
        lms_checks.check(settings(MOODLE_TOKEN="wrong"), lms), "Moodle web services moodle/default"
    )
    assert found.status == "fail" and "invalidtoken" in found.detail
    assert found.fix.startswith("MOODLE_TOKEN")


def test_a_moodle_service_without_the_functions_gradesync_calls_fails() -> None:
    def narrow(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"sitename": "LMS", "functions": [{"name": "core_user_get_users_by_field"}]}
        )

    found = named(
        lms_checks.check(settings(), answering(narrow)), "Moodle web services moodle/default"
    )
    assert found.status == "fail"
    assert "gradereport_user_get_grade_items" in found.detail
    assert "core_user_get_users_by_field" not in found.detail


def test_a_bad_anewspring_key_fails_naming_it(lms: httpx.BaseTransport) -> None:
    s = settings(ANEWSPRING_API_KEY="wrong")
    found = named(lms_checks.check(s, lms), "aNewSpring API anewspring/default")
    assert found.status == "fail" and found.fix == "ANEWSPRING_API_KEY"


def test_an_ilias_fault_at_login_fails_naming_the_credentials() -> None:
    fault = (
        b'<?xml version="1.0"?><SOAP-ENV:Envelope '
        b'xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>'
        b"<SOAP-ENV:Fault><faultcode>Client</faultcode>"
        b"<faultstring>Authentication failed.</faultstring></SOAP-ENV:Fault>"
        b"</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
    transport = answering(lambda r: httpx.Response(500, content=fault))
    found = named(
        lms_checks.check(settings(MOODLE_URL=None, ANEWSPRING_URL=None), transport),
        "ILIAS SOAP ilias/default",
    )
    assert found.status == "fail" and "ILIAS_PASSWORD" in found.fix


def test_an_lms_url_without_its_credential_is_refused_naming_it() -> None:
    s = settings(MOODLE_TOKEN=None, ILIAS_SOAP_URL=None, ANEWSPRING_URL=None)
    with pytest.raises(ConfigurationError, match="MOODLE_TOKEN: is not set, but the API's URL is"):
        lms_checks.check(s)
    found = diagnose(
        s,
        {},
        ping=lambda _: ["w"],
        coachview_transport=sim_transport(),
        redis_client=fakeredis.FakeRedis(),
    )
    assert named(found.checks, "sources").status == "fail"


def test_webhook_secrets_set_refused_and_open() -> None:
    s = settings(GRADESYNC_WEBHOOK_SECRET_XAPI=None, GRADESYNC_WEBHOOK_SECRET_ILIAS=None)
    refused = {"GRADESYNC_WEBHOOK_SECRET_ILIAS": "is too short"}
    checks = {c.name: c for c in lms_checks.secrets(s, refused)}
    assert checks["webhook secret moodle/default"].status == "ok"  # tests/conftest.py sets it
    assert checks["webhook secret ilias/default"].status == "fail"
    assert checks["webhook secret ilias/default"].fix == "GRADESYNC_WEBHOOK_SECRET_ILIAS"
    assert checks["webhook secret xapi/default"].status == "warn"  # open: GRADESYNC_INSECURE_DEV=1
    closed = {
        c.name: c
        for c in lms_checks.secrets(
            settings(GRADESYNC_WEBHOOK_SECRET_XAPI=None, GRADESYNC_INSECURE_DEV="0"), {}
        )
    }
    assert (
        closed["webhook secret xapi/default"].status == "ok"
        and "401" in closed["webhook secret xapi/default"].detail
    )


def test_a_refused_environment_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADESYNC_WEBHOOK_SECRET_XAPI", "Zq9tiny")
    monkeypatch.setenv("COACHVIEW_DELIVERY", "carrier-pigeon")
    s, refused = config.load()
    assert set(refused) == {"GRADESYNC_WEBHOOK_SECRET_XAPI", "COACHVIEW_DELIVERY"}
    reasons = " ".join(refused.values())  # the reasons, never the values
    assert "Zq9tiny" not in reasons and "pigeon" not in reasons
    assert s.coachview_delivery == "rest" and s.webhook_secret("xapi") is None
    names = [c.name for c in config.refused_checks(refused, lms_checks.SECRET_PREFIX)]
    assert names == ["COACHVIEW_DELIVERY"]  # the secret has its own line under lms


# -- Redis -----------------------------------------------------------------------------------

GOOD = RedisFacts(appendonly="yes", policy="noeviction", maxmemory=0, used=10_000_000)


def verdicts(facts: RedisFacts) -> dict[str, str]:
    return {c.name: c.status for c in redis_checks.judge(facts)}


def test_a_durable_noeviction_redis_passes() -> None:
    assert verdicts(GOOD) == {"AOF": "ok", "eviction": "ok", "memory": "ok"}


def test_redis_without_aof_or_with_eviction_fails() -> None:
    assert verdicts(GOOD.model_copy(update={"appendonly": "no"}))["AOF"] == "fail"
    evicting = redis_checks.judge(GOOD.model_copy(update={"policy": "allkeys-lru"}))
    assert named(evicting, "eviction").status == "fail"
    assert "noeviction" in named(evicting, "eviction").fix


@pytest.mark.parametrize(("used", "status"), [(70, "ok"), (80, "warn"), (95, "fail")])
def test_memory_headroom(used: int, status: str) -> None:
    facts = GOOD.model_copy(update={"maxmemory": 100 * 1_048_576, "used": used * 1_048_576})
    assert verdicts(facts)["memory"] == status


def test_a_host_that_disables_config_and_info_is_a_warning_not_a_failure() -> None:
    checks = redis_checks.check(fakeredis.FakeRedis(), "fake:6379/0")  # fakeredis has neither
    assert [c.status for c in checks] == ["ok", "warn"]
    assert "CONFIG" in checks[1].detail


def test_facts_from_info_when_config_is_disabled() -> None:
    assert verdicts(GOOD.model_copy(update={"source": "INFO"}))["CONFIG"] == "warn"


def test_the_redis_location_never_shows_the_password() -> None:
    assert redis_location("redis://:s3cret@cache.example:6380/2") == "cache.example:6380/2"


# -- Celery ----------------------------------------------------------------------------------


def test_celery_checks_name_what_to_start() -> None:
    r = fakeredis.FakeRedis()
    checks = {c.name: c for c in celery_checks.check(r, lambda: [], 10)}
    assert checks["worker"].status == "fail" and "celery -A workers worker" in checks["worker"].fix
    assert checks["beat"].status == "fail" and "celery -A workers beat" in checks["beat"].fix
    assert checks["queue"].status == "ok"
    r.set(celery_checks.BEAT_LOCK, "beat@host")
    r.rpush(celery_checks.QUEUE, *range(11))
    checks = {c.name: c for c in celery_checks.check(r, lambda: ["w1@host"], 10)}
    assert [checks[n].status for n in ("worker", "beat", "queue")] == ["ok", "ok", "warn"]


def test_the_lock_and_queue_names_are_celeryconfigs() -> None:
    assert celeryconfig.redbeat_lock_key == celery_checks.BEAT_LOCK
    assert celeryconfig.task_default_queue == celery_checks.QUEUE


# -- all together ------------------------------------------------------------------------------


def test_a_healthy_configuration_diagnoses_healthy(lms: httpx.BaseTransport) -> None:
    r = fakeredis.FakeRedis()
    r.set(celery_checks.BEAT_LOCK, "beat@host")
    found = diagnose(
        settings(),
        {},
        ping=lambda url: ["w1@host"],
        coachview_transport=sim_transport(),
        lms_transport=lms,
        redis_client=r,
    )
    assert found.healthy, [c for c in found.checks if c.status == "fail"]
    assert found.coachview_requests == 6
    assert {c.area for c in found.checks} == {
        "config",
        "redis",
        "celery",
        "reconcile",
        "coachview",
        "lms",
    }


def test_a_configuration_the_worker_refuses_is_a_failed_check(lms: httpx.BaseTransport) -> None:
    r = fakeredis.FakeRedis()
    r.set(celery_checks.BEAT_LOCK, "beat@host")
    found = diagnose(
        settings(GRADESYNC_INSECURE_DEV="0"),
        {},
        ping=lambda url: ["w1@host"],
        coachview_transport=sim_transport(),
        lms_transport=lms,
        redis_client=r,
    )
    (start,) = [c for c in found.checks if c.name == "a worker starts"]
    assert start.status == "fail" and "are the simulator's" in start.detail
    assert not found.healthy


@pytest.mark.parametrize("url", ["http://[::1", "http://user:S3cret@cv.example.nl"])
def test_odd_base_urls_are_named_without_a_crash_or_a_password(url: str) -> None:
    checks, _ = coachview_checks.check(settings(COACHVIEW_BASE_URL=url), sim_transport())
    base = next(c for c in checks if c.name == "base URL")
    assert "S3cret" not in base.detail


def test_no_worker_makes_it_unhealthy(lms: httpx.BaseTransport) -> None:
    found = diagnose(
        settings(),
        {},
        ping=lambda url: [],
        coachview_transport=sim_transport(),
        lms_transport=lms,
        redis_client=fakeredis.FakeRedis(),
    )
    assert not found.healthy
    assert {c.name for c in found.checks if c.status == "fail"} == {"worker", "beat"}


def moodle_answering(site_info: dict[str, Any], own_user: dict[str, Any]) -> httpx.MockTransport:
    """A Moodle whose token's own user (site info's ``userid`` 2) reads as ``own_user``."""
    functions = [{"name": f} for f in lms_checks.MOODLE_FUNCTIONS]

    def handler(request: httpx.Request) -> httpx.Response:
        if b"wsfunction=core_webservice_get_site_info" in request.content:
            return httpx.Response(
                200, json={"sitename": "LMS", "userid": 2, "functions": functions, **site_info}
            )
        return httpx.Response(200, json=[own_user])

    return httpx.MockTransport(handler)


# moodle/moodle user/lib.php user_get_user_details: ``idnumber`` is left out when it is empty,
# and shown to the user it belongs to whatever their capabilities ($currentuser): asking it of
# the token's own user tells nothing (finding: the doctor's idnumber probe).
@pytest.mark.parametrize(
    ("site_info", "own_user", "status"),
    [
        # a site admin's token whose service account has no ID number: it sees every field
        ({"userissiteadmin": True}, {"id": 2, "username": "ws"}, "ok"),
        # a plain token whose account has an ID number: it sees its own, not the learners'
        ({"userissiteadmin": False}, {"id": 2, "username": "ws", "idnumber": "svc"}, "warn"),
        ({}, {"id": 2, "username": "ws"}, "warn"),
    ],
)
def test_the_id_number_probe_does_not_ask_the_tokens_own_user(
    site_info: dict[str, Any], own_user: dict[str, Any], status: str
) -> None:
    found = named(
        lms_checks.check(settings(), moodle_answering(site_info, own_user)),
        "Moodle web services moodle/default",
    )
    assert found.status == status, found
    if status == "warn":
        assert "moodle/user:viewalldetails" in found.fix
