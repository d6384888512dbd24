"""Coachview's JSON is read strictly: ``"aanwezig": "false"`` once read as ``True``, so the steps
skipped attendance, pass, completed and approved as "already set" and the record ended
``delivered`` with only the result written. A value of the wrong type is
``unexpected_response`` naming the field, never a guess."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest
import respx

from gradesync.coachview import readers
from gradesync.coachview.client import PARTICIPATION as PARTICIPATION_KIND
from gradesync.coachview.client import CoachviewClient
from gradesync.errors import UnexpectedResponse
from gradesync.http import FieldProblem

NOT_BOOLEANS: tuple[Any, ...] = ("false", "true", 0, 1, "", [])
ROW: dict[str, Any] = {
    "id": 1,
    "opleidingsvraagId": 7001,
    "opleidingsonderdeelId": 9001,
    "persoonId": 1001,
    "auditTrail": {"etag": "e1"},
}


PARTICIPATION, REQUEST = readers.participation, readers.request_component
IDS = ("id", "opleidingsonderdeelId", "persoonId")


@pytest.mark.parametrize(
    ("read", "field", "value"),
    [
        *((PARTICIPATION, flag, odd) for flag in ("aanwezig", "geslaagd") for odd in NOT_BOOLEANS),
        *((REQUEST, flag, odd) for flag in ("afgerond", "akkoord") for odd in NOT_BOOLEANS),
        *(
            (read, ident, odd)
            for read in (PARTICIPATION, REQUEST)
            for ident in IDS
            for odd in (True, "1001", 1001.0, None)
        ),
        *((REQUEST, "opleidingsvraagId", odd) for odd in (True, "7001", 7001.0, None)),
        # A participation may have no enrolment (null), but not a mistyped one.
        *((PARTICIPATION, "opleidingsvraagId", odd) for odd in (True, "7001", 7001.0)),
        (REQUEST, "datumAkkoord", "20-11-2026"),
        (REQUEST, "datumAkkoord", 20261120),
        (REQUEST, "datumAkkoord", True),
        (PARTICIPATION, "resultaat", True),
        (PARTICIPATION, "resultaat", {"grade": 8}),
        (PARTICIPATION, "resultaat", float("nan")),
        (PARTICIPATION, "auditTrail", "e1"),
        (REQUEST, "auditTrail", "e1"),
    ],
)
def test_a_mistyped_field_is_named(read: Any, field: str, value: Any) -> None:
    with pytest.raises(FieldProblem) as info:
        read({**ROW, field: value})
    assert info.value.field == field
    assert repr(value) not in str(info.value)  # kinds, never values


def test_json_booleans_dates_and_results_are_read() -> None:
    row = {
        **ROW,
        "aanwezig": True,
        "geslaagd": False,
        "afgerond": None,
        "resultaat": 8.5,
        "datumAkkoord": "2026-11-20T00:00:00",
    }
    participation, request = readers.participation(row), readers.request_component(row)
    assert (participation.attendance, participation.passed) == (True, False)
    assert (request.completed, request.approved) == (False, False)
    assert participation.result == "8.5" and request.approval_date == date(2026, 11, 20)
    assert participation.etag == request.etag == "e1"
    assert readers.participation({**ROW, "opleidingsvraagId": None}).enrolment_id is None


@pytest.mark.parametrize(
    ("read", "row", "field"),
    [
        (readers.person, {"id": True}, "id"),
        (readers.person, {"id": 1001, "externId": True}, "externId"),
        (readers.person, {"id": 1001, "externId": 57.0}, "externId"),
        (readers.component, {"id": 9001, "opleidingId": "501"}, "opleidingId"),
        (
            readers.component,
            {"id": 9001, "opleidingId": 501, "elearningCode": ["12"]},
            "elearningCode",
        ),
    ],
)
def test_persons_and_components_are_read_strictly(read: Any, row: Any, field: str) -> None:
    with pytest.raises(FieldProblem) as info:
        read(row)
    assert info.value.field == field


@respx.mock
def test_a_string_boolean_from_coachview_is_unexpected_response() -> None:
    client = CoachviewClient("https://cv.test", "id", "secret")
    respx.post("https://cv.test/auth/connect/token").respond(
        200, json={"access_token": "abc", "expires_in": 3600}
    )
    respx.get("https://cv.test/api/v1/Opleidingsonderdeeluitvoeringen/1").mock(
        return_value=httpx.Response(200, json={**ROW, "aanwezig": "false"})
    )
    with pytest.raises(UnexpectedResponse) as info:
        client.get(PARTICIPATION_KIND, 1)
    assert info.value.code == "unexpected_response"
    assert "'aanwezig'" in info.value.message and "true or false" in info.value.message
