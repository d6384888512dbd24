"""The simulator answers every example request with the example response, literally.

It is sent each request of ``exchanges/`` as it stands (only the token and the current etag,
which the simulator chooses, are its own), and its answer must equal the example: status, the
headers that matter, the whole JSON body; volatile values by their pattern.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from coachview_sim.app import create_app
from tests.contract.examples import NAMES, SEED, TOKEN, Exchange, at, load, replaced


def send(sim: TestClient, example: Exchange, headers: dict[str, str]) -> httpx.Response:
    answer: httpx.Response = sim.request(
        example.method,
        example.path,
        params=example.query,
        headers=headers,
        content=example.request_body(),
    )
    return answer


def live_headers(sim: TestClient, example: Exchange) -> dict[str, str]:
    """The example's request headers, with the values only this simulator can know filled in."""
    headers = example.request_headers
    if "request.headers.Authorization" in example.volatile:
        token = send(sim, TOKEN, TOKEN.request_headers).json()["access_token"]
        headers["Authorization"] = f"Bearer {token}"
    if "request.headers.If-Match" in example.volatile:
        current = sim.get(example.path, headers={"Authorization": headers["Authorization"]})
        headers["If-Match"] = current.json()["auditTrail"]["etag"]
    unknown = {loc for loc in example.volatile if loc.startswith("request.")} - {
        "request.headers.Authorization",
        "request.headers.If-Match",
    }
    assert not unknown, f"{example.name}: no live value for {unknown}"
    return headers


def assert_answers_as_example(answer: httpx.Response, example: Exchange) -> None:
    assert answer.status_code == example.status, answer.text
    for name, expected in example.response_headers.items():
        got = answer.headers.get(name)
        pattern = example.pattern(f"response.headers.{name}")
        if pattern is None:
            assert got == expected, f"header {name}"
        else:
            assert got is not None and pattern.fullmatch(got), f"header {name}: {got!r}"
    if "json" not in example.response:
        return
    body: Any = answer.json()
    expected_body: Any = example.response["json"]
    for location in example.volatile:
        if not location.startswith("response.json."):
            continue
        inner = location.removeprefix("response.json.")
        value, pattern = at(body, inner), example.pattern(location)
        assert pattern and isinstance(value, str) and pattern.fullmatch(value), (location, value)
        body, expected_body = replaced(body, inner, None), replaced(expected_body, inner, None)
    assert body == expected_body


@pytest.mark.parametrize("name", NAMES)
def test_simulator_answers_each_example(name: str) -> None:
    example = load(name)
    sim = TestClient(create_app())
    sim.post("/_sim/seed", json=SEED).raise_for_status()
    answer = send(sim, example, live_headers(sim, example))
    assert_answers_as_example(answer, example)


@pytest.mark.parametrize(
    "name", ["08-participation-put-stale", "09-participation-put-without-if-match"]
)
def test_refused_writes_change_nothing(name: str) -> None:
    example = load(name)
    sim = TestClient(create_app())
    sim.post("/_sim/seed", json=SEED).raise_for_status()
    before = sim.get("/_sim/state").json()["enrolmentComponents"]
    send(sim, example, live_headers(sim, example))
    assert sim.get("/_sim/state").json()["enrolmentComponents"] == before
