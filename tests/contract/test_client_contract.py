"""The client sends exactly each example request and reads the example response as expected.

``CoachviewClient`` runs against an ``httpx.MockTransport`` that serves the example responses
literally; the request it sent must equal the example's (method, path, query, the headers that
matter, the body), and what it parsed must be the model values below.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from urllib.parse import parse_qsl

import fakeredis
import httpx
import pytest

from gradesync.coachview.budget import Budget
from gradesync.coachview.client import (
    PARTICIPATION,
    REQUEST_COMPONENT,
    TOKEN_MARGIN_S,
    CoachviewClient,
)
from gradesync.coachview.resultlink import ResultMessage, render
from gradesync.entities import Component, Participation, Person, RequestComponent
from gradesync.errors import Permanent, PreconditionFailed, Unresolved
from gradesync.roster import RosterPerson
from tests.contract.examples import NAMES, TOKEN, Exchange, load

BASE = "https://coachview.test"
# Exchanges only a server takes part in: gradesync never writes without If-Match.
SERVER_ONLY = {"09-participation-put-without-if-match"}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Wire:
    """Serves the token example and one example under test; keeps every request it got."""

    def __init__(self, example: Exchange) -> None:
        self.example = example
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        is_token = (request.method, request.url.path) == (TOKEN.method, TOKEN.path)
        served = TOKEN if is_token and self.example is not TOKEN else self.example
        return httpx.Response(
            served.status, headers=served.response_headers, content=served.response_body()
        )

    def last(self, example: Exchange) -> httpx.Request:
        matching = [r for r in self.sent if r.url.path == example.path] or self.sent
        return matching[-1]


def assert_sent_as_example(request: httpx.Request, example: Exchange) -> None:
    assert request.method == example.method
    assert request.url.path == example.path
    assert sorted(request.url.params.multi_items()) == sorted(example.query.items())
    for name, value in example.request_headers.items():
        assert request.headers.get(name) == value, f"header {name}"
    body = request.read()
    if "form" in example.request:
        assert dict(parse_qsl(body.decode(), keep_blank_values=True)) == example.request["form"]
    elif "json" in example.request:
        assert json.loads(body) == example.request["json"]
    elif "xml" in example.request:
        assert body == example.request_body()  # literally: the signature covers these bytes
    else:
        assert body == b""


def client_for(wire: Wire, clock: Clock, budget: Budget | None = None) -> CoachviewClient:
    form = TOKEN.request["form"]
    return CoachviewClient(
        BASE,
        form["client_id"],
        form["client_secret"],
        scope=form["scope"],
        transport=httpx.MockTransport(wire),
        clock=clock,
        budget=budget,
    )


def participation(**values: object) -> Participation:
    base: dict[str, object] = {"enrolment_id": 7001, "component_id": 9001, "person_id": 1001}
    return Participation.model_validate({**base, **values})


def request(**values: object) -> RequestComponent:
    base: dict[str, object] = {"enrolment_id": 7001, "component_id": 9001, "person_id": 1001}
    return RequestComponent.model_validate({**base, **values})


ANNA = Person(id=1001, extern_id="57")
# The default COACHVIEW_PERSON_MATCH (externId,id) with a numeric LMS person id: both elements.
RESULT = ResultMessage(
    extern_id="57", person_id=57, course_id="12", grade="8.5", completed_on=date(2026, 11, 20)
)
UNKNOWN = ResultMessage(
    extern_id="4242", person_id=4242, course_id="12", grade="7", completed_on=date(2026, 11, 20)
)


def token(client: CoachviewClient, example: Exchange, wire: Wire, clock: Clock) -> None:
    assert client.tokens.get() == example.response["json"]["access_token"]
    # Reused until shortly before expires_in: the client read the lifetime from the response.
    clock.now += example.response["json"]["expires_in"] - TOKEN_MARGIN_S - 1
    client.tokens.get()
    assert len(wire.sent) == 1


def person_by_extern_id(client: CoachviewClient, example: Exchange, *_: object) -> None:
    field, value = example.query["where"].split("=")
    assert client.find_persons(field, value) == [ANNA]


def person_by_id(client: CoachviewClient, example: Exchange, *_: object) -> None:
    assert client.find_persons("id", example.path.rsplit("/", 1)[1]) == [ANNA]


def components(client: CoachviewClient, *_: object) -> None:
    assert client.components_for_course("12") == [
        Component(id=9001, training_id=501, elearning_code="12")
    ]


def requests_of_person(client: CoachviewClient, *_: object) -> None:
    assert client.rows(REQUEST_COMPONENT, [9001, 9003], 1001) == [request(id=1, etag='"1-1"')]


def participations_of_person(client: CoachviewClient, *_: object) -> None:
    assert client.rows(PARTICIPATION, [9001, 9003], 1001) == [
        participation(id=100001, etag='"100001-1"')
    ]


def requests_of_course(client: CoachviewClient, *_: object) -> None:
    assert client.rows(REQUEST_COMPONENT, [9001]) == [
        request(id=1, etag='"1-1"'),
        request(id=3, enrolment_id=7002, person_id=1002, etag='"3-1"'),
    ]


def participations_of_course(client: CoachviewClient, *_: object) -> None:
    assert client.rows(PARTICIPATION, [9001]) == [
        participation(id=100001, etag='"100001-1"'),
        participation(
            id=100003, enrolment_id=7002, person_id=1002, result="6.0", etag='"100003-2"'
        ),
    ]


def persons_by_ids(client: CoachviewClient, *_: object) -> None:
    assert client.persons_by_ids([1002, 1001], ["externId", "id"]) == [
        RosterPerson(id=1001, codes={"externId": "57", "id": "1001"}),
        RosterPerson(id=1002, codes={"externId": "58", "id": "1002"}),
    ]


def get_request(client: CoachviewClient, *_: object) -> None:
    assert client.get(REQUEST_COMPONENT, 3) == request(
        id=3, enrolment_id=7002, person_id=1002, etag='"3-1"'
    )


def get_participation(client: CoachviewClient, *_: object) -> None:
    assert client.get(PARTICIPATION, 100003) == participation(
        id=100003, enrolment_id=7002, person_id=1002, result="6.0", etag='"100003-2"'
    )


def put_request(client: CoachviewClient, example: Exchange, *_: object) -> None:
    fields = {"completed": True, "approved": True, "approval_date": "2026-11-20"}
    written = client.update(REQUEST_COMPONENT, 1, fields, example.request_headers["If-Match"])
    assert written == request(
        id=1, completed=True, approved=True, approval_date=date(2026, 11, 20), etag='"1-2"'
    )


def put_participation(client: CoachviewClient, example: Exchange, *_: object) -> None:
    fields = {"result": "8.5", "attendance": True, "passed": True}
    written = client.update(PARTICIPATION, 100001, fields, example.request_headers["If-Match"])
    assert written == participation(
        id=100001, result="8.5", attendance=True, passed=True, etag='"100001-2"'
    )


def put_stale(client: CoachviewClient, example: Exchange, *_: object) -> None:
    with pytest.raises(PreconditionFailed):
        client.update(
            PARTICIPATION, 100001, {"attendance": True}, example.request_headers["If-Match"]
        )


Call = Callable[[CoachviewClient, Exchange, Wire, Clock], None]


def result_link(message: ResultMessage, raises: type[Exception] | None, code: str = "") -> Call:
    def call(client: CoachviewClient, example: Exchange, *_: object) -> None:
        body = render(message)
        assert body == example.request_body()  # the renderer's XML, literally
        secret = example.given["resultlink_secret"]
        if raises is None:
            client.post_result_link(body, example.query["plugin"], secret)
            return
        with pytest.raises(raises) as info:
            client.post_result_link(body, example.query["plugin"], secret)
        assert getattr(info.value, "code", None) == code

    return call


CALLS: dict[str, Call] = {
    "01-token": token,
    "02-person-by-extern-id": person_by_extern_id,
    "03-person-by-id": person_by_id,
    "04-components-by-elearning-code": components,
    "05-request-components-of-person": requests_of_person,
    "06-request-component-get": get_request,
    "07-request-component-put": put_request,
    "08-participation-put-stale": put_stale,
    "10-result-link": result_link(RESULT, None),
    "11-result-link-unknown-person": result_link(UNKNOWN, Unresolved, "not_placed"),
    "12-result-link-bad-signature": result_link(RESULT, Permanent, "http_403"),
    "13-participations-of-person": participations_of_person,
    "14-participation-get": get_participation,
    "15-participation-put": put_participation,
    "16-request-components-of-course": requests_of_course,
    "17-participations-of-course": participations_of_course,
    "18-persons-by-ids": persons_by_ids,
}


def test_every_example_is_played_to_the_client_or_is_server_only() -> None:
    assert sorted(CALLS.keys() | SERVER_ONLY) == NAMES


@pytest.mark.parametrize("name", sorted(CALLS))
def test_client_sends_each_example_request_and_reads_its_response(name: str) -> None:
    example = load(name)
    wire, clock = Wire(example), Clock(1_000.0)
    client = client_for(wire, clock)
    CALLS[name](client, example, wire, clock)
    assert_sent_as_example(wire.last(example), example)
    if example is not TOKEN and TOKEN.path in {r.url.path for r in wire.sent}:
        assert_sent_as_example(wire.sent[0], TOKEN)


def test_client_reads_the_daily_budget_headers() -> None:
    example = load("02-person-by-extern-id")
    headers = example.response_headers
    reset = int(headers["X-Rate-Limit-Reset"])
    budget = Budget(fakeredis.FakeRedis(), reserve=25, clock=lambda: reset - 3600.0)
    client = client_for(Wire(example), Clock(1_000.0), budget)
    person_by_extern_id(client, example)
    snapshot = budget.snapshot()
    assert snapshot is not None
    assert (snapshot["limit"], snapshot["remaining"], snapshot["reset_epoch"]) == (
        int(headers["X-Rate-Limit-Limit"]),
        int(headers["X-Rate-Limit-Remaining"]),
        reset,
    )
