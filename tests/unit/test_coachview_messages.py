"""What gradesync says to Coachview and to the operator about Coachview, pinned whole: the result
link's XML, the messages naming a mistyped field, the pause after a 429. A mutation run
(issue 22) showed that changing any of these words or elements left every test green."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from gradesync.coachview import readers
from gradesync.coachview.gate import Paused
from gradesync.coachview.resultlink import ResultMessage, learner, render, sign
from gradesync.errors import Unresolved
from gradesync.http import FieldProblem


def test_the_result_link_message_whole() -> None:
    full = ResultMessage(
        extern_id="EXT-57", person_id=57, course_id="12", grade="8,5", completed_on=date(2026, 1, 2)
    )
    assert render(full) == (
        b"<?xml version='1.0' encoding='utf-8'?>\n<ElearningResultaat>"
        b"<ExternId>EXT-57</ExternId><PersoonId>57</PersoonId><Cursusnummer>12</Cursusnummer>"
        b"<Cijfer>8,5</Cijfer><Aanwezig>true</Aanwezig><Geslaagd>true</Geslaagd>"
        b"<Afgerond>true</Afgerond><DatumAfgerond>2026-01-02</DatumAfgerond>"
        b"</ElearningResultaat>"
    )
    bare = ResultMessage(person_id=57, course_id="12", grade=None, completed_on=date(2026, 1, 2))
    assert render(bare) == (
        b"<?xml version='1.0' encoding='utf-8'?>\n<ElearningResultaat>"
        b"<PersoonId>57</PersoonId><Cursusnummer>12</Cursusnummer>"
        b"<Aanwezig>true</Aanwezig><Geslaagd>true</Geslaagd>"
        b"<Afgerond>true</Afgerond><DatumAfgerond>2026-01-02</DatumAfgerond>"
        b"</ElearningResultaat>"
    )


def test_the_signature_is_base64_hmac_sha512_of_the_body() -> None:
    # RFC 4231, test case 2 (HMAC-SHA-512 of "what do ya want for nothing?" under "Jefe"):
    # 164b7a7b…38bce737, Base64-encoded.
    assert sign(b"what do ya want for nothing?", "Jefe") == (
        "Fkt6e/z4GeLjlfvnO1bgo4e9ZCIugx/WECcM1+olBVSXWL91wFqZSm0DT2X48Ob9yuqxo01Ka0tjbgcKOLznNw=="
    )


def test_an_id_no_field_can_carry_says_which_fields_were_tried() -> None:
    with pytest.raises(Unresolved) as info:
        learner("EXT-57", ("id", "email"))
    assert info.value.message == (
        "result link: this LMS person id fits no field of COACHVIEW_PERSON_MATCH (id,email); "
        "a Coachview person id is digits"
    )


def test_a_pause_longer_than_a_worker_waits_says_how_long() -> None:
    paused = Paused(3599.6)
    assert (paused.message, paused.code, paused.retry_after) == (
        "Coachview asked to wait 3600 s (Retry-After)",
        "rate_limited",
        3599.6,
    )


@pytest.mark.parametrize(
    ("read", "row", "message"),
    [
        (readers.person, {"id": "1"}, "field 'id': expected an integer id, got a string"),
        (readers.person, {"id": None}, "field 'id': expected an integer id, got null"),
        (
            readers.person,
            {"id": 1, "externId": 5.0},
            "field 'externId': expected a string, got float",
        ),
        (
            readers.person,
            {"id": 1, "externId": True},
            "field 'externId': expected a string, got a boolean",
        ),
        (
            readers.request_component,
            {"datumAkkoord": 20261120},
            "field 'datumAkkoord': expected an ISO date, got int",
        ),
        (
            readers.request_component,
            {"datumAkkoord": "morgen"},
            "field 'datumAkkoord': expected an ISO date, got a string",
        ),
        (
            readers.request_component,
            {"akkoord": "true"},
            "field 'akkoord': expected true or false, got a string",
        ),
        (
            readers.participation,
            {"resultaat": None, "auditTrail": []},
            "field 'auditTrail': expected an object, got list",
        ),
        (
            readers.participation,
            {"auditTrail": {"etag": 5}},
            "field 'auditTrail.etag': expected a string, got int",
        ),
        (
            readers.participation,
            {"resultaat": [8]},
            "field 'resultaat': expected a string or a number, got list",
        ),
        (
            readers.participation,
            {"resultaat": None, "auditTrail": {"etag": None}, "aanwezig": None},
            None,
        ),
    ],
)
def test_a_mistyped_field_is_named_with_its_kind(
    read: Any, row: dict[str, Any], message: str | None
) -> None:
    base = {
        "id": 1,
        "opleidingsvraagId": 7001,
        "opleidingsonderdeelId": 9001,
        "persoonId": 1001,
    }
    if message is None:
        read({**base, **row})
        return
    with pytest.raises(FieldProblem) as info:
        read({**base, **row})
    assert str(info.value) == message


def test_what_is_read_when_the_types_are_right() -> None:
    assert readers.person({"id": 1001, "externId": 57}).extern_id == "57"
    assert readers.person({"id": 1001, "externId": None}).extern_id is None
    assert readers.person({"id": 1001}).extern_id is None
    component = readers.component({"id": 9001, "opleidingId": 501, "elearningCode": "12"})
    assert (component.id, component.training_id, component.elearning_code) == (9001, 501, "12")
    row = {"id": 1, "opleidingsvraagId": 7001, "opleidingsonderdeelId": 9001, "persoonId": 1001}
    request = readers.request_component({**row, "datumAkkoord": "", "resultaat": ""})
    assert request.approval_date is None and request.etag is None
    assert request.id == 1 and request.enrolment_id == 7001 and request.person_id == 1001
    participation = readers.participation({**row, "resultaat": "", "auditTrail": {}})
    assert participation.result is None and participation.etag is None
    assert participation.component_id == 9001 and participation.enrolment_id == 7001
    assert readers.participation({**row, "resultaat": 8}).result == "8"
    assert readers.request_component({**row, "datumAkkoord": "2026-11-20"}).approval_date == date(
        2026, 11, 20
    )
