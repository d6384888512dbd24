"""An LMS id is data, never part of Coachview's ``where=`` filter: a person id like
``nobody,EXT-0093`` once matched another learner (``,`` is any-of there) who then got the grade.
The client refuses such a value before sending anything, and keeps only the returned rows that
match what it asked, should Coachview read the filter differently or ignore it."""

from __future__ import annotations

from typing import Any

import pytest
import respx
from structlog.testing import capture_logs

from gradesync.coachview.api import UnqueryableValue
from gradesync.coachview.client import REQUEST_COMPONENT, CoachviewClient
from gradesync.entities import Person

BASE = "https://cv.test"
PERSONS = [
    {"id": 1001, "externId": "57"},
    {"id": 1002, "externId": "58"},
    {"id": 1003, "externId": "EXT-0093"},
    {"id": 1004, "externId": 57},  # a number on the wire reads as its digits
    {"id": 1005, "externId": "ext-0093"},
    {"id": 1006, "externId": None},
]


@pytest.fixture
def client() -> CoachviewClient:
    return CoachviewClient(BASE, "id", "secret", timeout_s=1)


def _token() -> None:
    respx.post(f"{BASE}/auth/connect/token").respond(
        200, json={"access_token": "abc", "expires_in": 3600}
    )


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("nobody,EXT-0093", "','"),
        ("57;externId=58", "';'"),
        ("externId=58", "'='"),
        (">=0", "'>'"),
        ("<58", "'<'"),
        ("!57", "'!'"),
        ("57\n", "control"),
        ("57\x00", "control"),
        ("57\u200b", "invisible"),
    ],
)
@respx.mock
def test_an_id_the_filter_would_read_as_syntax_is_refused_before_sending(
    client: CoachviewClient, value: str, named: str
) -> None:
    _token()
    route = respx.get(f"{BASE}/api/v1/Personen").respond(200, json=PERSONS)
    with pytest.raises(UnqueryableValue) as info:
        client.find_persons("externId", value)
    assert info.value.code == "unqueryable_id"
    assert named in info.value.message and "'externId'" in info.value.message
    assert value.strip("\n\x00\u200b<>=!") not in info.value.message  # never the id itself
    assert not route.called


@respx.mock
def test_a_course_id_is_checked_the_same_way(client: CoachviewClient) -> None:
    _token()
    route = respx.get(f"{BASE}/api/v1/Opleidingsonderdelen").respond(200, json=[])
    with pytest.raises(UnqueryableValue):
        client.components_for_course("12,13")
    assert not route.called


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("57", [Person(id=1001, extern_id="57"), Person(id=1004, extern_id="57")]),
        ("EXT-0093", [Person(id=1003, extern_id="EXT-0093")]),
        ("59", []),
    ],
)
@respx.mock
def test_a_coachview_that_ignores_the_filter_gives_no_other_learner(
    client: CoachviewClient, value: str, expected: list[Person]
) -> None:
    _token()
    respx.get(f"{BASE}/api/v1/Personen").respond(200, json=PERSONS)
    with capture_logs() as logged:
        found = client.find_persons("externId", value)
    assert found == expected
    [warning] = [e for e in logged if e["event"] == "coachview_filter_mismatch"]
    assert warning["log_level"] == "warning"
    assert warning["returned"] == len(PERSONS)
    assert warning["dropped"] == len(PERSONS) - len(expected)
    assert value not in repr(logged)  # counts, not personal data


@respx.mock
def test_a_person_read_by_id_must_be_that_person(client: CoachviewClient) -> None:
    _token()
    respx.get(f"{BASE}/api/v1/Personen/1001").respond(200, json={"id": 1002, "externId": "58"})
    assert client.find_persons("id", "1001") == []


@respx.mock
def test_non_ascii_digits_are_not_a_coachview_id(client: CoachviewClient) -> None:
    _token()
    route = respx.get(f"{BASE}/api/v1/Personen/1001").respond(200, json={"id": 1001})
    assert client.find_persons("id", "١٠٠١") == []  # int() reads these as 1001
    assert not route.called


@respx.mock
def test_only_components_carrying_the_course_id_are_returned(client: CoachviewClient) -> None:
    _token()
    rows: list[dict[str, Any]] = [
        {"id": 9001, "opleidingId": 501, "elearningCode": "12"},
        {"id": 9002, "opleidingId": 501, "elearningCode": "120"},
        {"id": 9003, "opleidingId": 502, "elearningCode": None},
        {"id": 9004, "opleidingId": 503, "elearningCode": 12},
    ]
    respx.get(f"{BASE}/api/v1/Opleidingsonderdelen").respond(200, json=rows)
    assert [c.id for c in client.components_for_course("12")] == [9001, 9004]


@respx.mock
def test_only_the_learner_s_request_components_asked_for_are_returned(
    client: CoachviewClient,
) -> None:
    _token()

    def row(ec: int, person: int, component: int) -> dict[str, Any]:
        return {
            "id": ec,
            "opleidingsvraagId": 7001,
            "opleidingsonderdeelId": component,
            "persoonId": person,
        }

    rows = [row(1, 1001, 9001), row(2, 1002, 9001), row(3, 1001, 9005), row(4, 1001, 9002)]
    respx.get(f"{BASE}/api/v1/Opleidingsvraagonderdelen").respond(200, json=rows)
    assert [rc.id for rc in client.rows(REQUEST_COMPONENT, [9001, 9002], 1001)] == [1, 4]
    # A course's roster: every learner's, still only the components asked for.
    assert [rc.id for rc in client.rows(REQUEST_COMPONENT, [9001, 9002])] == [1, 2, 4]
