"""The console against hostile values and callers (issue 25): text that looks like a moment,
login throttling, forms that are too large."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest
from fastapi.testclient import TestClient

from console.auth import (
    FIRST_DELAY_S,
    FREE_ATTEMPTS_PER_IP,
    FREE_ATTEMPTS_PER_USER,
    MAX_DELAY_S,
    LoginLimit,
)
from gradesync.event import CompletionEvent
from producers.limits import CONSOLE_MAX_BODY_BYTES
from tests.unit.test_console import EVENT, Console


def test_a_history_value_that_only_looks_like_a_moment_is_shown_as_text() -> None:
    """An event id (or an ILIAS free-text mark) ``0001-01-01T00:35:18+14:00`` is a valid ISO
    moment that overflows when moved to UTC: the record page shows it as it is, not a 500."""
    console = Console()
    rid = console.unresolved()
    odd = "0001-01-01T00:35:18+14:00"
    later = CompletionEvent.model_validate(EVENT | {"event_id": odd})
    console.ledger.admit(later, datetime(2026, 11, 20, 16, 0, tzinfo=UTC))
    console.login()
    page = console.client.get(f"/console/records/{rid}")
    assert page.status_code == 200 and odd in page.text


def _elsewhere(console: Console, address: str) -> Console:
    """The same console (app, Redis) seen from another client address."""
    other = Console.__new__(Console)
    other.sent, other.ledger = console.sent, console.ledger
    other.client = TestClient(
        console.client.app,
        base_url="https://testserver",
        follow_redirects=False,
        client=(address, 50000),
    )
    return other


def test_wrong_passwords_from_elsewhere_never_keep_the_administrator_out() -> None:
    """Issue 25 item 7: many wrong passwords for ``anna`` from one address throttle that
    address's tries for ``anna``; ``anna`` at her own address logs in at once."""
    console = Console()
    attacker = _elsewhere(console, "203.0.113.9")
    answers = [attacker.login(password="wrong-wrong-wrong").status_code for _ in range(12)]
    assert answers[:FREE_ATTEMPTS_PER_USER] == [401] * FREE_ATTEMPTS_PER_USER
    assert set(answers[FREE_ATTEMPTS_PER_USER:]) == {429}
    throttled = attacker.login()  # even the right password waits there
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
    assert console.login().status_code == 303


def test_after_the_free_attempts_each_failure_doubles_the_wait() -> None:
    limit = LoginLimit(fakeredis.FakeRedis())
    now = 1_000_000.0
    for _ in range(FREE_ATTEMPTS_PER_USER - 1):
        assert limit.reserve("192.0.2.1", "anna", now) == 0
    waits = []
    for _ in range(12):
        assert limit.reserve("192.0.2.1", "anna", now) == 0  # allowed: its wait is over
        now += 0.001
        wait = limit.reserve("192.0.2.1", "anna", now)  # a try before the wait is over
        waits.append(round(wait + 0.001, 3))
        now += wait
    assert waits[:5] == [FIRST_DELAY_S * 2**i for i in range(5)]
    assert max(waits) == MAX_DELAY_S  # growing, but never a lockout
    assert limit.reserve("192.0.2.2", "anna", now) == 0  # another address: its own count


def test_a_right_password_forgets_the_failures() -> None:
    limit = LoginLimit(fakeredis.FakeRedis())
    for _ in range(FREE_ATTEMPTS_PER_USER):
        limit.reserve("192.0.2.1", "anna", 0.0)
    assert limit.reserve("192.0.2.1", "anna", 0.0) > 0
    limit.succeeded("192.0.2.1", "anna")
    assert limit.reserve("192.0.2.1", "anna", 0.0) == 0


def test_one_address_trying_many_names_is_throttled_too() -> None:
    limit = LoginLimit(fakeredis.FakeRedis())
    for n in range(FREE_ATTEMPTS_PER_IP):
        assert limit.reserve("192.0.2.1", f"guess{n}", 0.0) == 0
    assert limit.reserve("192.0.2.1", "anna", 0.0) > 0
    assert limit.reserve("192.0.2.7", "anna", 0.0) == 0


@pytest.mark.parametrize("path", ["/console/login", "/console/logout"])
@pytest.mark.parametrize("declared", [True, False])
def test_a_console_form_over_its_limit_is_refused_before_it_is_parsed(
    path: str, declared: bool
) -> None:
    """Issue 25 item 1: Starlette parses a form whole (1,000 fields × 1 MiB) before a handler
    can look at it; a console form is refused past 16 KiB, whether its length is declared or
    it comes chunked."""
    console = Console()
    token = console.csrf("/console/login")
    form = f"csrf={token}&user=anna&password=" + "a" * (CONSOLE_MAX_BODY_BYTES + 1)
    content: Any = form.encode()
    if not declared:
        content = iter([content[i : i + 4096] for i in range(0, len(content), 4096)])
    answer = console.client.post(
        path, content=content, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 413 and answer.json()["error"] == "too_large"


def test_a_console_form_that_never_arrives_is_408() -> None:
    console = Console(GRADESYNC_BODY_TIMEOUT_S="0.2")
    app = console.client.app

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/console/login",
        "raw_path": b"/console/login",
        "query_string": b"",
        "root_path": "",
        "scheme": "https",
        "server": ("testserver", 443),
        "client": ("192.0.2.1", 5000),
        "http_version": "1.1",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
        "app": app,
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 408


def test_no_page_on_the_console_origin_loads_script_from_elsewhere() -> None:
    """Issue 25 item 11: /docs loaded an unpinned Swagger UI from a CDN, without integrity,
    on the console's origin. No interactive docs are served; the document still is."""
    console = Console()
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert console.client.get(path).status_code == 404, path
    assert console.client.get("/openapi.json").json()["paths"]
