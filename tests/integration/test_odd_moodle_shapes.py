"""Issue 23 after a hostile trial (t23): the odd-but-legal shapes Moodle's own code produces and
what an attacker sends, through the real ingress, worker, fake LMS and simulator.

Grade items are the corpus's course total (tests/conformance/moodle/grade-items-80.json, from
moodle/moodle ``grade/report/user/tests/externallib_test.php``) with the fields
``grade/report/user/classes/report/user.php`` sets differently in each case."""

from __future__ import annotations

import json
import time
from typing import Any

from producers.signatures import anewspring_signature, standard_signature
from tests.integration.conftest import Stack
from tests.integration.test_conformance import (
    COMPONENT,
    CORPUS,
    completed_in_moodle,
    corpus,
    enrolment,
    local_webhooks,
    seed,
    serve,
)


def total(**fields: Any) -> dict[str, Any]:
    """The corpus's grade report with the course total's fields replaced."""
    answer: dict[str, Any] = corpus("moodle", "grade-items-80.json")
    items = answer["usergrades"][0]["gradeitems"]
    items[-1] = {**items[-1], **fields}
    return answer


def test_odd_course_totals_are_graded_from_the_number_or_wait(clean: Stack) -> None:
    seed(clean)
    cases: dict[str, tuple[dict[str, Any], str | None]] = {
        # grademin ≠ 0: 60 on 20–100 is halfway
        "81": (total(graderaw=60, grademin=20, grademax=100, gradeformatted="60.00"), "5.5"),
        # hidden, but the token's user may see hidden grades: the number is there, still waits
        "82": (total(gradeishidden=True, gradeformatted="80.00"), None),
        # Moodle's "Error" with the raw grade still present (needsupdate)
        "83": (total(gradeneedsupdate=True, gradeformatted="Error"), None),
        # "-" and no number at all
        "84": (total(graderaw=None, gradeformatted="-"), None),
    }
    completed_in_moodle(clean, *cases)
    rids = {}
    for n, (user, (answer, _)) in enumerate(cases.items()):
        serve(clean, "gradereport_user_get_grade_items", user, answer)
        body = local_webhooks(user, 1100 + n)
        got = clean.api.post("/events/moodle", json=body)
        assert got.status_code == 202, got.text
        rids[user] = got.json()["key"]
    for user, (_, expected) in cases.items():
        record = clean.settle(rids[user])
        row = clean.component(enrolment(user), COMPONENT)
        if expected is None:
            assert record.state == "unresolved", (user, record.last_error)
            assert record.last_error is not None
            assert record.last_error.code == "grade_unavailable"
            assert row["writes"]["result"] == 0 and row["writes"]["approved"] == 0, user
        else:
            assert record.state == "delivered", (user, record.last_error)
            assert row["result"] == expected, user


def test_one_completion_however_moodle_spells_its_ids(clean: Stack) -> None:
    seed(clean)
    completed_in_moodle(clean, "85")
    serve(clean, "gradereport_user_get_grade_items", "85", total())
    as_text = {**local_webhooks("85", 1200), "courseid": "12", "objectid": "1200"}
    as_int = {**local_webhooks("85", 1200), "relateduserid": 85, "courseid": 12}
    first = clean.api.post("/events/moodle", json=as_text)
    again = clean.api.post("/events/moodle", json=as_int)
    assert first.status_code == 202, first.text
    assert again.status_code == 200 and again.json()["key"] == first.json()["key"], again.text
    assert clean.settle(first.json()["key"]).state == "delivered"
    assert clean.component(enrolment("85"), COMPONENT)["writes"]["result"] == 1


def test_wrong_tokens_and_signatures_are_401_and_record_nothing(clean: Stack) -> None:
    seed(clean)
    before = clean.ledger.r.dbsize()
    body = {**local_webhooks("86", 1300), "token": "not-the-token"}
    form = clean.api.post(
        "/events/moodle",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    stamp = str(int(time.time()))
    raw = json.dumps(local_webhooks("86", 1301)).encode()
    signed = clean.api.post(
        "/events/moodle",
        content=raw,
        headers={
            "content-type": "application/json",
            "webhook-id": "msg_1",
            "webhook-timestamp": stamp,
            "webhook-signature": standard_signature("whsec_" + "QUFBQQ==", "msg_1", stamp, raw),
        },
    )
    xml = (CORPUS / "anewspring" / "webhook-completed.xml").read_bytes()
    asp = clean.api.post(
        "/events/anewspring",
        content=xml,
        headers={
            "content-type": "text/xml",
            "x-webhook-signature": anewspring_signature("wrong", xml),
        },
    )
    assert [form.status_code, signed.status_code, asp.status_code] == [401, 401, 401]
    assert clean.ledger.r.dbsize() == before


def test_hostile_xml_is_a_4xx_even_when_signed(clean: Stack) -> None:
    bombs = [
        b'<!DOCTYPE w [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><w><type>&b;</type></w>',
        b'<!DOCTYPE w [<!ENTITY x SYSTEM "file:///etc/passwd">]><w><type>&x;</type></w>',
        b"<w>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</w>",
        b"<w><type>" + b"x" * 70000 + b"</type></w>",
    ]
    statuses = []
    for bomb in bombs:
        statuses.append(clean.post_anewspring(bomb).status_code)
    assert statuses == [400, 400, 400, 413]
    assert clean.api.get("/healthz").status_code == 200


def test_anewspring_is_never_told_an_error_for_a_learner_or_course_it_knows_and_we_do_not(
    clean: Stack,
) -> None:
    clean.seed()
    xml = (CORPUS / "anewspring" / "webhook-completed.xml").read_bytes()
    xml = xml.replace(b"<userID>57</userID>", b"<userID>no-such-learner</userID>")
    answer = clean.post_anewspring(xml)
    assert answer.status_code == 202, answer.text
    record = clean.settle(answer.json()["key"])
    assert record.state in ("unresolved", "failed") and record.last_error is not None


def test_a_grade_report_of_another_shape_fails_naming_the_field(clean: Stack) -> None:
    """Was ``unexpected_error`` with a source file and line (finding: malformed grade report)."""
    seed(clean)
    completed_in_moodle(clean, "87")
    serve(clean, "gradereport_user_get_grade_items", "87", {"usergrades": [{"gradeitems": None}]})
    answer = clean.api.post("/events/moodle", json=local_webhooks("87", 1400))
    assert answer.status_code == 202, answer.text
    record = clean.settle(answer.json()["key"])
    assert record.state == "failed" and record.last_error is not None
    assert record.last_error.code == "moodle_unexpected_response"
    assert "usergrades.0.gradeitems" in record.last_error.message
    assert sum(clean.component(enrolment("87"), COMPONENT)["writes"].values()) == 0
