"""The console in process (fakeredis): login, sessions, CSRF, the pages' content and headers.
The real browser over real processes is tests/integration/test_console_browser.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import fakeredis
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import ValidationError

from console.auth import COOKIE, FREE_ATTEMPTS_PER_IP
from console.i18n import choose
from console.routes import _safe_next
from gradesync.event import CompletionEvent
from gradesync.ledger import Ledger
from gradesync.record import LedgerError
from gradesync.settings import ConfigurationError, Settings, describe_problems
from gradesync.stack import console_access
from producers.api import create_app

USERS = "anna:correct-horse-battery,bram:another-long-password"
SECRET = "s" * 40
EVENT = {
    "source": "moodle",
    "source_instance": "https://lms.example.nl",
    "event_id": "ev-1",
    "person_id": "4242",
    "course_id": "12",
    "grade": "8.5",
    "completed_at": "2026-11-20T14:03:00+01:00",
}


def settings(**overrides: Any) -> Settings:
    env = {
        "GRADESYNC_INSECURE_DEV": "0",
        "GRADESYNC_CONSOLE_USERS": USERS,
        "GRADESYNC_CONSOLE_SECRET": SECRET,
        "GRADESYNC_WEBHOOK_SECRET_MOODLE": "dev-moodle-token",
        "MOODLE_URL": "http://lms.invalid",
        "MOODLE_TOKEN": "t",
        "GRADESYNC_TIMEZONE": "Europe/Amsterdam",
        **overrides,
    }
    return Settings(**env)


class Console:
    def __init__(self, **overrides: Any) -> None:
        self.sent: list[str] = []
        self.ledger = Ledger(fakeredis.FakeRedis())
        app = create_app(self.ledger, self.sent.append, settings(**overrides))
        self.client = TestClient(app, base_url="https://testserver", follow_redirects=False)

    def unresolved(self, **event: Any) -> str:
        ev = CompletionEvent.model_validate(EVENT | event)
        now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
        rid = self.ledger.admit(ev, now).record.id
        error = LedgerError(code="unknown_person", message="no Coachview person 4242")
        self.ledger.unresolved(
            rid, now, error, max_retries=30, retry_time=time(3), tz=ZoneInfo("Europe/Amsterdam")
        )
        return rid

    def csrf(self, path: str = "/console/") -> str:
        page = self.client.get(path)
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found is not None, page.text
        return found.group(1)

    def login(self, user: str = "anna", password: str = "correct-horse-battery") -> Response:
        token = self.csrf("/console/login")
        form = {"user": user, "password": password, "csrf": token, "next": "/console/attention"}
        answer: Response = self.client.post("/console/login", data=form)
        return answer


@pytest.fixture
def console() -> Console:
    return Console()


def test_a_stranger_gets_401_and_the_login_form_and_cannot_act(console: Console) -> None:
    rid = console.unresolved()
    page = console.client.get("/console/attention")
    assert page.status_code == 401
    assert 'action="/console/login"' in page.text and "4242" not in page.text
    assert console.client.post(f"/console/records/{rid}/retry").status_code == 401
    assert console.ledger.get(rid).state == "unresolved"  # type: ignore[union-attr]


def test_login_then_pages_carry_the_security_headers(console: Console) -> None:
    answer = console.login()
    assert answer.status_code == 303 and answer.headers["location"] == "/console/attention"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    page = console.client.get("/console/")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert "<script" not in page.text and 'http-equiv="refresh"' in page.text


def test_a_wrong_password_or_unknown_name_is_refused(console: Console) -> None:
    assert console.login(password="correct-horse-batterx").status_code == 401
    assert console.login(user="nobody").status_code == 401
    assert console.client.get("/console/").status_code == 401


def test_a_post_without_or_with_a_foreign_csrf_token_is_refused(console: Console) -> None:
    rid = console.unresolved()
    console.login()
    assert console.client.post(f"/console/records/{rid}/retry").status_code == 403
    other = Console()
    other.login()
    foreign = {"csrf": other.csrf()}
    assert console.client.post(f"/console/records/{rid}/retry", data=foreign).status_code == 403
    assert console.ledger.get(rid).state == "unresolved"  # type: ignore[union-attr]
    assert console.sent == []


def test_a_login_post_without_its_token_is_refused(console: Console) -> None:
    form = {"user": "anna", "password": "correct-horse-battery"}
    assert console.client.post("/console/login", data=form).status_code == 403


def test_retry_and_give_up_are_recorded_with_who(console: Console) -> None:
    rid = console.unresolved()
    console.login()
    answer = console.client.post(f"/console/records/{rid}/retry", data={"csrf": console.csrf()})
    assert answer.status_code == 303
    assert console.sent == [rid] and console.ledger.get(rid).state == "queued"  # type: ignore[union-attr]
    assert console.ledger.history(rid)[-1] | {"at": ""} == {
        "at": "",
        "what": "operator_retry",
        "by": "anna",
    }
    form = {"csrf": console.csrf(), "reason": "left the company"}
    assert console.client.post(f"/console/records/{rid}/give-up", data=form).status_code == 303
    last = console.ledger.history(rid)[-1]
    assert last["what"] == "given_up" and last["by"] == "anna"
    page = console.client.get(f"/console/records/{rid}")
    assert "left the company" in page.text and "anna" in page.text


def test_give_up_without_a_reason_changes_nothing(console: Console) -> None:
    rid = console.unresolved()
    console.login()
    answer = console.client.post(
        f"/console/records/{rid}/give-up", data={"csrf": console.csrf(), "reason": " "}
    )
    assert answer.status_code == 409 and "reason" in answer.text
    assert console.ledger.get(rid).state == "unresolved"  # type: ignore[union-attr]


def test_needs_attention_groups_and_retries_a_group(console: Console) -> None:
    first, second = console.unresolved(), console.unresolved(person_id="77", event_id="ev-2")
    console.login()
    page = console.client.get("/console/attention")
    assert 'id="group-unknown_person"' in page.text and "4242" in page.text and "77" in page.text
    assert "8.5" not in page.text  # the grade only on the record page
    form = {"csrf": console.csrf(), "reason": "unknown_person"}
    answer = console.client.post("/console/attention/retry", data=form)
    assert answer.headers["location"] == "/console/attention?retried=2"
    assert sorted(console.sent) == sorted([first, second])


def test_search_by_person_event_id_and_key_and_the_grade_only_on_the_record(
    console: Console,
) -> None:
    rid = console.unresolved()
    console.login()
    for query in ("4242", "ev-1", rid, "moodle|https://lms.example.nl|4242|12"):
        page = console.client.get("/console/search", params={"q": query})
        assert f"/console/records/{rid}" in page.text, query
        assert "8.5" not in page.text
    assert "8.5" in console.client.get(f"/console/records/{rid}").text


def test_dutch_labels_and_local_times(console: Console) -> None:
    rid = console.unresolved()
    console.login()
    page = console.client.get(f"/console/records/{rid}", headers={"accept-language": "nl,en;q=0.5"})
    assert "Geschiedenis" in page.text and 'lang="nl"' in page.text
    # 15:00 UTC on 20 November is 16:00 in Amsterdam.
    assert "2026-11-20 16:00" in page.text


def test_overview_alerts_on_failed_records(console: Console) -> None:
    rid = console.unresolved()
    now = datetime.now(UTC)
    console.ledger.retry_now(rid, now)  # only a run fails: queue it and start it first
    console.ledger.start(rid, now)
    console.ledger.fail(rid, now, LedgerError(code="rejected", message="no"))
    console.login()
    assert "records failed" in console.client.get("/console/").text


def test_without_users_the_console_refuses_and_the_ingress_still_answers() -> None:
    bare = Console(GRADESYNC_CONSOLE_USERS=None, GRADESYNC_CONSOLE_SECRET=None)
    assert bare.client.get("/console/").status_code == 503
    assert bare.client.get("/console/login").status_code == 503
    assert bare.client.get("/healthz").status_code == 200


def test_users_without_a_secret_stop_the_start_outside_development() -> None:
    with pytest.raises(ConfigurationError, match="GRADESYNC_CONSOLE_SECRET"):
        Console(GRADESYNC_CONSOLE_SECRET=None)


def test_development_without_users_is_open() -> None:
    dev = Console(
        GRADESYNC_INSECURE_DEV="1", GRADESYNC_CONSOLE_USERS=None, GRADESYNC_CONSOLE_SECRET=None
    )
    assert dev.client.get("/console/").status_code == 200


@pytest.mark.parametrize(
    ("users", "named"),
    [
        ("anna", "entry 1"),
        ("anna:short", "shorter than 12"),
        ("anna:correct-horse-battery,anna:correct-horse-battery", "named twice"),
        ("an na:correct-horse-battery", "entry 1"),
    ],
)
def test_bad_console_users_are_named_without_the_password(users: str, named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(GRADESYNC_CONSOLE_USERS=users)
    message = describe_problems(caught.value)  # what the start-up prints
    assert "GRADESYNC_CONSOLE_USERS" in message and named in message
    assert "horse" not in message and ":short" not in message


def test_a_login_redirects_only_within_the_console() -> None:
    assert _safe_next("/console/records/x") == "/console/records/x"
    for target in ("https://evil.example", "//evil.example", "/docs", "/console\\@evil", None):
        assert _safe_next(target) == "/console/"


def test_the_language_follows_accept_language() -> None:
    assert choose("nl-NL,nl;q=0.9,en;q=0.8") == "nl"
    assert choose("en-GB,nl;q=0.5") == "en"
    assert choose("de,fr;q=0.5") == "en"
    assert choose("de, nl;q=0.2, en;q=0") == "nl"
    assert choose(None) == "en"


def test_the_console_is_not_in_the_openapi_document(console: Console) -> None:
    paths = console.client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/console")]


def test_stack_up_gives_the_console_a_working_login_and_says_where() -> None:
    env: dict[str, str] = {}
    line = console_access(env, 8000)
    assert "http://127.0.0.1:8000/console/" in line
    name, password = env["GRADESYNC_CONSOLE_USERS"].split(":")
    assert f"user {name}, password {password}" in line
    started = Console(
        GRADESYNC_CONSOLE_USERS=env["GRADESYNC_CONSOLE_USERS"],
        GRADESYNC_CONSOLE_SECRET=env["GRADESYNC_CONSOLE_SECRET"],
    )
    assert started.login(name, password).status_code == 303
    mine = {"GRADESYNC_CONSOLE_USERS": USERS}
    assert "GRADESYNC_CONSOLE_USERS" in console_access(mine, 8000)
    assert mine["GRADESYNC_CONSOLE_USERS"] == USERS


def test_successful_logins_do_not_use_up_the_address_limit(console: Console) -> None:
    for _ in range(FREE_ATTEMPTS_PER_IP + 5):
        console.client.cookies.clear()  # a new browser, the same address
        assert console.login().status_code == 303


def test_logging_out_ends_the_session_even_for_a_copied_cookie(console: Console) -> None:
    console.login()
    copied = console.client.cookies.get(COOKIE)
    assert console.client.get("/console/attention").status_code == 200
    form = {"csrf": console.csrf("/console/attention")}
    assert console.client.post("/console/logout", data=form).status_code == 303
    console.client.cookies.clear()
    console.client.cookies.set(COOKIE, copied or "")  # the cookie kept from before
    assert console.client.get("/console/attention").status_code == 401


def test_the_overview_and_the_groups_name_the_installation(console: Console) -> None:
    console.unresolved(source_instance="staff")
    console.unresolved(source_instance="acme", event_id="ev-acme")
    console.login()
    overview = console.client.get("/console/").text
    table = overview[overview.index('class="installations"') :]
    assert "moodle/acme" in table and "moodle/staff" in table
    attention = console.client.get("/console/attention").text
    assert "moodle/acme (1), moodle/staff (1)" in attention
    assert "<td>moodle/acme</td>" in attention and "<td>moodle/staff</td>" in attention


def test_a_shadowed_record_coachview_could_not_place_needs_attention_and_can_be_retried(
    console: Console,
) -> None:
    ev = CompletionEvent.model_validate(EVENT | {"event_id": "ev-shadow", "person_id": "91"})
    now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    rid = console.ledger.admit(ev, now).record.id
    console.ledger.delivery(rid, "shadow")
    error = LedgerError(code="unknown_person", message="no Coachview person 91")
    console.ledger.unresolved(
        rid, now, error, max_retries=30, retry_time=time(3), tz=ZoneInfo("Europe/Amsterdam")
    )
    assert console.ledger.get(rid).state == "shadowed"  # type: ignore[union-attr]
    console.login()
    page = console.client.get("/console/attention")
    assert 'id="group-unknown_person"' in page.text and "91" in page.text
    record = console.client.get(f"/console/records/{rid}").text
    assert 'id="retry"' in record and "In Coachview, open the person" in record
    answer = console.client.post(f"/console/records/{rid}/retry", data={"csrf": console.csrf()})
    assert answer.status_code == 303 and console.sent == [rid]
    confirmed = console.client.get(answer.headers["location"]).text
    assert 'role="status"' in confirmed and 'id="error"' not in confirmed


def test_the_budget_says_who_counted_its_figure_beside_that_figure(console: Console) -> None:
    """ "42 requests sent since … · counted by Coachview" read as if Coachview had counted the
    42 (gradesync counts those); the qualifier belongs to the requests left."""
    console.login()
    page = console.client.get("/console/").text
    budget = re.search(r'<p id="budget">(.*?)</p>', page, re.S)
    assert budget is not None and "counted by" in budget.group(1), page
    sent = re.search(r"<p>([^<]*requests sent[^<]*)</p>", page)
    assert sent is not None and "counted by" not in sent.group(1), page
