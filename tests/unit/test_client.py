from __future__ import annotations

import fakeredis
import httpx
import pytest
import respx

from gradesync.coachview.budget import Budget
from gradesync.coachview.client import PARTICIPATION, REQUEST_COMPONENT, CoachviewClient
from gradesync.errors import Permanent, PreconditionFailed, Transient
from gradesync.http import retry_after_seconds

BASE = "https://cv.test"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(clock: Clock) -> CoachviewClient:
    return CoachviewClient(BASE, "id", "secret", clock=clock, timeout_s=1)


@respx.mock
def test_token_is_fetched_once_and_reused(client: CoachviewClient) -> None:
    token = respx.post(f"{BASE}/auth/connect/token").respond(
        200, json={"access_token": "abc", "expires_in": 3600}
    )
    persons = respx.get(f"{BASE}/api/v1/Personen").respond(200, json=[{"id": 1, "externId": "57"}])
    for _ in range(3):
        assert client.find_persons("externId", "57")[0].id == 1
    assert token.call_count == 1
    assert persons.calls.last.request.headers["Authorization"] == "Bearer abc"
    assert persons.calls.last.request.url.params["where"] == "externId=57"
    form = token.calls.last.request.content.decode()
    assert "grant_type=client_credentials" in form and "client_id=id" in form


@respx.mock
def test_token_refreshed_shortly_before_expiry(client: CoachviewClient, clock: Clock) -> None:
    token = respx.post(f"{BASE}/auth/connect/token").respond(
        200, json={"access_token": "abc", "expires_in": 900}
    )
    respx.get(f"{BASE}/api/v1/Personen").respond(200, json=[])
    client.find_persons("externId", "1")
    clock.now += 900 - 61
    client.find_persons("externId", "1")
    assert token.call_count == 1
    clock.now += 2  # inside the safety margin
    client.find_persons("externId", "1")
    assert token.call_count == 2


@respx.mock
def test_401_refreshes_the_token_once(client: CoachviewClient) -> None:
    tokens = iter(["old", "new"])
    respx.post(f"{BASE}/auth/connect/token").mock(
        side_effect=lambda r: httpx.Response(200, json={"access_token": next(tokens)})
    )
    route = respx.get(f"{BASE}/api/v1/Personen").mock(
        side_effect=lambda r: httpx.Response(
            200 if r.headers["Authorization"] == "Bearer new" else 401, json=[]
        )
    )
    assert client.find_persons("externId", "1") == []
    assert route.call_count == 2


@respx.mock
def test_429_is_transient_with_retry_after(client: CoachviewClient) -> None:
    respx.post(f"{BASE}/auth/connect/token").respond(200, json={"access_token": "a"})
    respx.get(f"{BASE}/api/v1/Opleidingsonderdelen").respond(429, headers={"Retry-After": "7"})
    with pytest.raises(Transient) as info:
        client.components_for_course("12")
    assert info.value.retry_after == 7.0 and info.value.code == "rate_limited"


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        (500, Transient, "http_500"),
        (503, Transient, "http_503"),
        (400, Permanent, "http_400"),
        (403, Permanent, "http_403"),
        (409, Permanent, "http_409"),
        (412, PreconditionFailed, "stale"),
    ],
)
@respx.mock
def test_status_mapping(
    client: CoachviewClient, status: int, error: type[Exception], code: str
) -> None:
    respx.post(f"{BASE}/auth/connect/token").respond(200, json={"access_token": "a"})
    respx.put(f"{BASE}/api/v1/Opleidingsonderdeeluitvoeringen/5").respond(status, text="nope")
    with pytest.raises(error) as info:
        client.update(PARTICIPATION, 5, {"attendance": True}, 'W/"5-1"')
    assert info.value.code == code  # type: ignore[attr-defined]


@respx.mock
def test_timeouts_and_connection_errors_are_transient(client: CoachviewClient) -> None:
    respx.post(f"{BASE}/auth/connect/token").respond(200, json={"access_token": "a"})
    respx.get(f"{BASE}/api/v1/Personen/1").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(Transient) as info:
        client.find_persons("id", "1")
    assert info.value.code == "timeout"
    respx.get(f"{BASE}/api/v1/Personen/2").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(Transient) as info:
        client.find_persons("id", "2")
    assert info.value.code == "connection"


@respx.mock
def test_person_by_id_404_is_no_match_and_non_numeric_ids_are_not_sent(
    client: CoachviewClient,
) -> None:
    respx.post(f"{BASE}/auth/connect/token").respond(200, json={"access_token": "a"})
    respx.get(f"{BASE}/api/v1/Personen/9").respond(404)
    assert client.find_persons("id", "9") == []
    assert client.find_persons("id", "EXT-9") == []
    assert len(respx.calls) == 2  # token + one lookup


@respx.mock
def test_update_sends_coachview_names_and_if_match(client: CoachviewClient) -> None:
    respx.post(f"{BASE}/auth/connect/token").respond(200, json={"access_token": "a"})
    row = {
        "id": 5,
        "opleidingsvraagId": 7001,
        "opleidingsonderdeelId": 9001,
        "persoonId": 1001,
        "afgerond": False,
        "akkoord": True,
        "datumAkkoord": "2026-11-20",
        "auditTrail": {"etag": 'W/"5-2"'},
    }
    put = respx.put(f"{BASE}/api/v1/Opleidingsvraagonderdelen/5").respond(200, json=row)
    ec = client.update(
        REQUEST_COMPONENT, 5, {"approved": True, "approval_date": "2026-11-20"}, 'W/"5-1"'
    )
    request = put.calls.last.request
    assert request.headers["If-Match"] == 'W/"5-1"'
    assert request.read() == b'{"akkoord":true,"datumAkkoord":"2026-11-20"}'
    assert ec.approved and ec.etag == 'W/"5-2"' and str(ec.approval_date) == "2026-11-20"


def test_retry_after_forms() -> None:
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("garbage") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


@respx.mock
def test_persons_by_id_ask_100_ids_a_read_and_no_page_past_the_last_id(
    client: CoachviewClient,
) -> None:
    respx.post(f"{BASE}/auth/connect/token").respond(200, json={"access_token": "a"})

    def answer(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["where"].removeprefix("id=").split(",")
        return httpx.Response(200, json=[{"id": int(i), "externId": f"P{i}"} for i in ids])

    route = respx.get(f"{BASE}/api/v1/Personen").mock(side_effect=answer)
    found = client.persons_by_ids(range(1, 251), ["externId"])
    assert len(found) == 250 and found[0].codes == {"externId": "P1"}
    # 100 + 100 + 50 ids: three reads, none for a page after a full one of 100 ids.
    assert [len(c.request.url.params["where"].split(",")) for c in route.calls] == [100, 100, 50]


def test_a_request_is_counted_before_it_is_sent_so_one_that_times_out_counts_too() -> None:
    """Coachview counts a request whose answer never came: so does the local count."""

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    budget = Budget(fakeredis.FakeRedis(), reserve=10)
    client = CoachviewClient(
        "https://cv.example", "id", "secret", transport=httpx.MockTransport(timeout), budget=budget
    )
    with pytest.raises(Transient):
        client.find_persons("externId", "57")
    sent = budget.sent()
    assert sent is not None and sent["total"] >= 1
