"""The senders that exist (issue 23): local_webhooks under either content type it offers,
local_webhookengine's signed envelope, aNewSpring's XML — each body from tests/conformance."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from producers import bodies
from producers.signatures import anewspring_signature, standard_signature
from tests.unit.test_ingress import ASP, App

CONFORMANCE = Path(__file__).parent.parent / "conformance"
MOODLE_TOKEN = "dev-moodle-token"  # GRADESYNC_WEBHOOK_SECRET_MOODLE in test_ingress.settings


def completion(app: App, answer: Any) -> str:
    """The completion key the ingress recorded the answer's record under, as text."""
    record = app.ledger.get(answer.json()["key"])
    assert record is not None
    return record.event.key.text()


def payload(name: str) -> Any:
    return json.loads((CONFORMANCE / "moodle" / name).read_text())["payload"]


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/x-www-form-urlencoded", "application/json; charset=utf-8"],
)
def test_local_webhooks_either_content_type_it_offers(content_type: str) -> None:
    app = App()
    body = json.dumps(payload("local_webhooks-course_completed.json")).encode()
    answer = app.client.post("/events/moodle", content=body, headers={"content-type": content_type})
    assert answer.status_code == 202, answer.text
    assert completion(app, answer) == "moodle|default|57|12"


def test_local_webhooks_develop_branch_form_fields() -> None:
    """classes/task/notify.php posts the event array: Moodle's curl encodes it as form fields."""
    app = App()
    fields = "eventname=%5Ccore%5Cevent%5Ccourse_completed&objectid=17&courseid=12"
    fields += f"&relateduserid=57&timecreated={int(time.time()) - 60}&token={MOODLE_TOKEN}"
    answer = app.client.post(
        "/events/moodle",
        content=fields.encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 202, answer.text
    assert completion(app, answer) == "moodle|default|57|12"


def test_webhookengine_envelope_signed_per_standard_webhooks() -> None:
    app = App()
    body = json.dumps(payload("webhookengine-course_completed.json")).encode()
    stamp = str(int(time.time()))
    answer = app.client.post(
        "/events/moodle",
        content=body,
        headers={
            "content-type": "application/json",
            "webhook-id": "msg_1",
            "webhook-timestamp": stamp,
            "webhook-signature": standard_signature(MOODLE_TOKEN, "msg_1", stamp, body),
        },
    )
    assert answer.status_code == 202, answer.text
    assert completion(app, answer) == "moodle|default|57|12"
    # the same completion through local_webhooks is the same event (objectid + timecreated)
    flat = json.dumps(payload("local_webhooks-course_completed.json")).encode()
    again = app.client.post("/events/moodle", content=flat, headers={"content-type": "text/json"})
    assert again.status_code == 415  # only the types the plugins send
    same = app.client.post(
        "/events/moodle", content=flat, headers={"content-type": "application/json"}
    )
    assert same.status_code == 200 and same.json()["event_id"] == answer.json()["event_id"]


def test_other_moodle_events_answer_2xx() -> None:
    app = App()
    body = json.dumps(payload("local_webhooks-course_viewed.json")).encode()
    answer = app.client.post(
        "/events/moodle", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 202 and "ignored" in answer.json()


def test_anewspring_xml_webhook() -> None:
    app = App()
    body = (CONFORMANCE / "anewspring" / "webhook-completed.xml").read_bytes()
    for content_type in ("text/xml", "application/xml; charset=UTF-8"):
        answer = app.client.post(
            "/events/anewspring",
            content=body,
            headers={
                "content-type": content_type,
                "x-webhook-signature": anewspring_signature(ASP, body),
            },
        )
        assert answer.status_code in (200, 202), answer.text
        assert completion(app, answer) == "anewspring|default|57|12"


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]><webhook><type>&a;</type></webhook>',
        b"<webhook><type>completed",
        # Nesting deeper than Python's recursion limit, within the 64 KiB body (finding: deep XML).
        b"<webhook>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</webhook>",
    ],
)
def test_hostile_or_broken_xml_is_a_400_naming_it(body: bytes) -> None:
    app = App()
    answer = app.client.post(
        "/events/anewspring",
        content=body,
        headers={
            "content-type": "text/xml",
            "x-webhook-signature": anewspring_signature(ASP, body),
        },
    )
    assert answer.status_code == 400 and answer.json()["error"] == "malformed_xml"


def post_xml(app: App, body: bytes) -> Any:
    signature = anewspring_signature(ASP, body)
    headers = {"content-type": "text/xml", "x-webhook-signature": signature}
    return app.client.post("/events/anewspring", content=body, headers=headers)


def test_repeated_xml_elements_are_a_list_not_a_refusal() -> None:
    """XML has no other way to send a list: a webhook gradesync does not use that carries one
    is a 2xx (aNewSpring: never answer an error for a webhook type; finding: repeated
    elements), and a completion whose field repeats is a 422 naming the field."""
    app = App()
    other = b"<webhook><type>groupChanged</type><user>1</user><user>2</user></webhook>"
    answer = post_xml(app, other)
    assert answer.status_code == 202 and "ignored" in answer.json(), answer.text
    twice = b"<webhook><type>completed</type><type>again</type></webhook>"
    answer = post_xml(app, twice)
    assert answer.status_code == 422 and answer.json()["detail"][0]["field"] == "event"


def test_an_implausible_completion_from_an_authenticated_sender_is_recorded_failed() -> None:
    """local_webhooks never resends: a 422 lost the completion; now it is a failed record
    naming the field, and the same webhook again is the same record."""
    app = App()
    future = int(time.time()) + 10 * 86400
    body = json.dumps({**payload("local_webhooks-course_completed.json"), "timecreated": future})
    headers = {"content-type": "application/json"}
    first = app.client.post("/events/moodle", content=body.encode(), headers=headers)
    assert first.status_code == 202 and first.json()["state"] == "failed", first.text
    record = app.ledger.get(first.json()["key"])
    assert record is not None and record.last_error is not None
    assert record.last_error.code == "implausible_event"
    assert f"timecreated {future} must lie between" in record.last_error.message
    assert app.sent == []  # never handed to a worker
    again = app.client.post("/events/moodle", content=body.encode(), headers=headers)
    assert again.status_code == 200 and again.json()["key"] == first.json()["key"]


def refusal(read: Callable[[], object]) -> tuple[int, str, str]:
    """What a body is refused with: status, error and detail."""
    with pytest.raises(bodies.BodyRejected) as refused:
        read()
    assert str(refused.value) == refused.value.detail  # read as its detail where it is printed
    return refused.value.status, refused.value.error, refused.value.detail


@pytest.mark.parametrize(
    ("kind", "content_type", "wanted"),
    [
        ("moodle", "text/xml", "application/json or application/x-www-form-urlencoded"),
        ("anewspring", "text/plain", "application/json or text/xml"),
        ("ilias", "application/x-www-form-urlencoded", "application/json"),
        ("xapi", "text/xml", "application/json"),
    ],
)
def test_each_route_names_exactly_the_types_it_takes(
    kind: str, content_type: str, wanted: str
) -> None:
    assert refusal(lambda: bodies.decoder(kind, content_type)) == (
        415,
        "unsupported_media_type",
        f"send Content-Type: {wanted}",
    )


@pytest.mark.parametrize("content_type", ["application/cloudevents+json", "Application/JSON"])
def test_every_route_reads_json_under_any_json_media_type(content_type: str) -> None:
    for kind in ("moodle", "ilias", "anewspring", "xapi"):
        assert bodies.decoder(kind, f"{content_type}; charset=utf-8")(b'{"a": 1}') == {"a": 1}


def test_malformed_json_says_what_the_parser_found() -> None:
    assert refusal(lambda: bodies.json_body(b'{"eventname": ')) == (
        400,
        "malformed_json",
        "body is not acceptable JSON: Expecting value at line 1 column 15",
    )


def test_moodle_form_fields_keep_an_empty_value_and_json_after_blank_lines() -> None:
    """An empty field stays a field (the event's model then names it), never dropped; a JSON
    body (local_webhooks' master branch) is JSON under the form header, leading whitespace too."""
    assert bodies.moodle_form(b"eventname=x&objectid=") == {"eventname": "x", "objectid": ""}
    assert bodies.moodle_form(b'\r\n {"objectid": 17}') == {"objectid": 17}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"eventname", "body is neither JSON nor form fields"),  # a name without its value
        (b"eventname=\xff", "body is neither JSON nor form fields"),  # not UTF-8
        (b"userid=5&relateduserid=57&userid=6", "form field 'userid' appears twice"),
    ],
)
def test_a_moodle_form_that_cannot_be_read_is_a_400_naming_why(body: bytes, detail: str) -> None:
    assert refusal(lambda: bodies.moodle_form(body)) == (400, "malformed_form", detail)


def test_xml_elements_become_fields_empty_ones_empty_and_repeated_ones_lists() -> None:
    body = b"<webhook><type>completed</type><grade/><id> 7 </id><u>1</u><u>2</u><u>3</u></webhook>"
    assert bodies.xml_body(body) == {
        "type": "completed",
        "grade": "",
        "id": "7",
        "u": ["1", "2", "3"],
    }
    assert bodies.xml_body(b"<webhook>completed</webhook>") == {}  # no fields at all


def test_xml_nests_as_deep_as_json_may_and_no_deeper() -> None:
    def nested(levels: int) -> bytes:
        return b"<webhook>" + b"<a>" * levels + b"x" + b"</a>" * levels + b"</webhook>"

    deepest = bodies.xml_body(nested(32))  # {"a": {"a": …}} is 32 levels of JSON objects
    for _ in range(31):
        deepest = deepest["a"]
    assert deepest == {"a": "x"}
    assert refusal(lambda: bodies.xml_body(nested(33))) == (
        400,
        "malformed_xml",
        "nested deeper than 32 levels",
    )


def test_xml_with_a_document_type_is_refused_even_without_entities() -> None:
    # An external DTD is a fetch waiting for a parser that follows it; aNewSpring sends none.
    body = b'<!DOCTYPE webhook SYSTEM "http://example.org/w.dtd"><webhook><type>x</type></webhook>'
    status, error, detail = refusal(lambda: bodies.xml_body(body))
    assert (status, error) == (400, "malformed_xml")
    assert detail.startswith("body is not acceptable XML: DTDForbidden")
