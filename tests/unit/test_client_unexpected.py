"""Answers the Coachview client did not expect end as a typed, visible outcome: never a crash,
a hang or a silent success."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from gradesync.coachview.client import (
    MAX_TOKEN_TTL_S,
    PARTICIPATION,
    REQUEST_COMPONENT,
    SIMULATOR_HEADER,
    TOKEN_MARGIN_S,
    CoachviewClient,
)
from gradesync.errors import Permanent, UnexpectedResponse
from gradesync.http import short_body

BASE = "https://cv.test"
LOGIN_PAGE = (
    "<html><head><title>Sign in to Contoso proxy (user 4242, anna@example.nl)</title></head>"
    "<body>Please log in</body></html>"
)


@pytest.fixture
def client() -> CoachviewClient:
    return CoachviewClient(BASE, "id", "secret", timeout_s=1)


def _token() -> None:
    respx.post(f"{BASE}/auth/connect/token").respond(
        200, json={"access_token": "abc", "expires_in": 3600}
    )


def _persons(client: CoachviewClient) -> Any:
    return client.find_persons("externId", "57")


def _one_person(client: CoachviewClient) -> Any:
    return client.find_persons("id", "1001")


def _components(client: CoachviewClient) -> Any:
    return client.components_for_course("77")


CALLS: dict[str, tuple[str, Callable[[CoachviewClient], Any]]] = {
    "persons": ("/api/v1/Personen", _persons),
    "person": ("/api/v1/Personen/1001", _one_person),
    "components": ("/api/v1/Opleidingsonderdelen", _components),
}


@pytest.mark.parametrize(
    ("response", "says"),
    [
        (httpx.Response(200, text=LOGIN_PAGE, headers={"content-type": "text/html"}), "text/html"),
        (httpx.Response(204), "empty body"),
        (
            httpx.Response(200, content=b"{not json", headers={"content-type": "application/json"}),
            "not JSON",
        ),
        (
            httpx.Response(302, headers={"location": "https://sso.example.nl/login?u=4242"}),
            "redirect",
        ),
        (httpx.Response(200, json={"value": []}), "expected a JSON|field 'id' is missing"),
        (httpx.Response(200, json="ok"), "expected a JSON"),
    ],
)
@pytest.mark.parametrize("call", CALLS)
@respx.mock
def test_answers_that_are_not_what_the_client_reads_are_unexpected_response(
    client: CoachviewClient, call: str, response: httpx.Response, says: str
) -> None:
    path, do = CALLS[call]
    _token()
    respx.get(f"{BASE}{path}").mock(return_value=response)
    with pytest.raises(UnexpectedResponse) as info:
        do(client)
    assert info.value.code == "unexpected_response"
    assert re.search(says, info.value.message), info.value.message
    assert "4242" not in info.value.message and "anna@" not in info.value.message


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([{"persoonId": 1001, "externId": "57"}], "'id'"),
        ([{"id": "not-a-number", "externId": "57"}], "'id'"),
        ([{"id": None}], "'id'"),
        (["a string row"], "unexpected type"),
    ],
)
@respx.mock
def test_a_renamed_or_mistyped_field_is_named(
    client: CoachviewClient, rows: list[Any], field: str
) -> None:
    _token()
    respx.get(f"{BASE}/api/v1/Personen").respond(200, json=rows)
    with pytest.raises(UnexpectedResponse) as info:
        _persons(client)
    assert field in info.value.message and "not-a-number" not in info.value.message


@pytest.mark.parametrize(
    "body",
    [
        {"token": "abc"},
        {"access_token": ""},
        {"access_token": 5},
        {"access_token": "a", "expires_in": "soon"},
        # A lifetime that is not a finite positive number once cached the token forever.
        {"access_token": "a", "expires_in": "1e999"},
        {"access_token": "a", "expires_in": "inf"},
        {"access_token": "a", "expires_in": "nan"},
        {"access_token": "a", "expires_in": 0},
        {"access_token": "a", "expires_in": -60},
        {"access_token": "a", "expires_in": True},
        {"access_token": "a", "expires_in": None},
        {"access_token": "a", "expires_in": [3600]},
    ],
)
@respx.mock
def test_a_token_answer_without_a_usable_token(client: CoachviewClient, body: Any) -> None:
    respx.post(f"{BASE}/auth/connect/token").respond(200, json=body)
    with pytest.raises(UnexpectedResponse):
        _persons(client)


@respx.mock
def test_a_request_component_without_its_fields_is_unexpected(
    client: CoachviewClient,
) -> None:
    _token()
    respx.get(f"{BASE}/api/v1/Opleidingsvraagonderdelen/5").respond(
        200, json={"id": 5, "opleidingsvraagId": 7001}
    )
    with pytest.raises(UnexpectedResponse, match="opleidingsonderdeelId"):
        client.get(REQUEST_COMPONENT, 5)


@respx.mock
def test_no_write_without_a_precondition(client: CoachviewClient) -> None:
    _token()
    put = respx.put(f"{BASE}/api/v1/Opleidingsonderdeeluitvoeringen/5").respond(200, json={})
    with pytest.raises(UnexpectedResponse, match="unconditioned"):
        client.update(PARTICIPATION, 5, {"attendance": True}, "")
    assert put.call_count == 0


@respx.mock
def test_the_etag_header_is_used_when_the_body_has_none(client: CoachviewClient) -> None:
    _token()
    respx.get(f"{BASE}/api/v1/Opleidingsvraagonderdelen/5").respond(
        200,
        json={"id": 5, "opleidingsvraagId": 7, "opleidingsonderdeelId": 9, "persoonId": 1},
        headers={"ETag": '"v3"'},
    )
    assert client.get(REQUEST_COMPONENT, 5).etag == '"v3"'


@respx.mock
def test_a_simulator_is_refused_unless_allowed() -> None:
    respx.post(f"{BASE}/auth/connect/token").respond(
        200, json={"access_token": "abc", "expires_in": 3600}, headers={SIMULATOR_HEADER: "1"}
    )
    respx.get(f"{BASE}/api/v1/Personen").respond(200, json=[], headers={SIMULATOR_HEADER: "1"})
    production = CoachviewClient(BASE, "id", "secret")
    with pytest.raises(Permanent) as info:
        _persons(production)
    assert info.value.code == "coachview_is_simulator"
    assert "GRADESYNC_INSECURE_DEV" in info.value.message
    development = CoachviewClient(BASE, "id", "secret", allow_simulator=True)
    assert _persons(development) == []


@respx.mock
def test_an_infinite_json_lifetime_is_unexpected(client: CoachviewClient) -> None:
    respx.post(f"{BASE}/auth/connect/token").respond(
        200,
        content=b'{"access_token": "a", "expires_in": 1e999}',
        headers={"content-type": "application/json"},
    )
    with pytest.raises(UnexpectedResponse, match="expires_in"):
        _persons(client)


@respx.mock
def test_a_token_lives_a_day_at_most() -> None:
    now = [0.0]
    client = CoachviewClient(BASE, "id", "secret", clock=lambda: now[0])
    respx.post(f"{BASE}/auth/connect/token").respond(
        200,
        json={"access_token": "a", "expires_in": "31536000"},  # a year
    )
    client.tokens.get()
    now[0] = MAX_TOKEN_TTL_S - TOKEN_MARGIN_S + 1
    client.tokens.get()
    assert client.tokens.fetches == 2


@respx.mock
def test_a_look_up_reads_every_page(client: CoachviewClient) -> None:
    _token()
    row = {"id": 9001, "opleidingId": 501, "elearningCode": "77"}
    route = respx.get(f"{BASE}/api/v1/Opleidingsonderdelen").mock(
        side_effect=[
            httpx.Response(200, json=[{**row, "id": n} for n in range(100)]),
            httpx.Response(200, json=[{**row, "id": 100 + n} for n in range(3)]),
        ]
    )
    found = client.components_for_course("77")
    assert [c.id for c in found] == list(range(103))
    first, second = (call.request.url.params for call in route.calls)
    assert "skip" not in first and first["take"] == "100"
    assert second["skip"] == "100" and second["take"] == "100"


@respx.mock
def test_a_look_up_that_never_ends_is_unexpected(client: CoachviewClient) -> None:
    _token()
    row = {"id": 1, "opleidingId": 501, "elearningCode": "77"}
    respx.get(f"{BASE}/api/v1/Opleidingsonderdelen").respond(200, json=[row] * 100)
    with pytest.raises(UnexpectedResponse, match="more than 2000 rows"):
        client.components_for_course("77")


def test_a_stored_excerpt_carries_no_terminal_control() -> None:
    """Issue 25 item 6: ESC and OSC-8 bytes from a Coachview page are not stored."""
    page = (
        "<html><title>Fout \x1b]8;;https://evil.example/\x1b\\hier\x1b]8;;\x1b\\ \x1b[31m!</title>"
    )
    excerpt = short_body(httpx.Response(500, text=page))
    assert "\x1b" not in excerpt and "hier" in excerpt
