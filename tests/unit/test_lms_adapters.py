from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import respx
from pydantic import ValidationError

from gradesync.errors import Permanent, Transient
from gradesync.lms.ilias import IliasSoap, envelope, result
from gradesync.lms.moodle import MoodleError, MoodleWS, grade_text, why_not_a_grade
from gradesync.parsed import Completion, Ignored, Rejected
from gradesync.settings import get_settings
from gradesync.sources import ANewSpringSource, IliasSource, XapiSource
from gradesync.webhook_secrets import signing_key
from producers import anewspring, ilias, xapi
from producers.native import NATIVE
from producers.signatures import standard_signature, verify_standard

S = get_settings()
FIXTURES = Path(__file__).parent.parent / "fixtures"
MOODLE = "https://moodle.test"


@respx.mock
def test_moodle_course_total_is_the_course_item() -> None:
    respx.post(f"{MOODLE}/webservice/rest/server.php").respond(
        200, content=(FIXTURES / "moodle-gradereport_user_get_grade_items.json").read_bytes()
    )
    item = MoodleWS(MOODLE, "t").course_total("12", "57")
    assert item is not None and item["graderaw"] == 8.5
    assert grade_text(item, "formatted") == "8,50"
    assert grade_text(item, "dutch") == "8.7"  # 1 + 9 × 0.85
    assert grade_text(item, "dutch", ",") == "8,7"


def test_dutch_grades_are_rounded_half_up_and_out_of_range_is_no_grade() -> None:
    assert grade_text({"graderaw": 0, "grademax": 100}, "dutch") == "1.0"
    assert grade_text({"graderaw": 100, "grademax": 100}, "dutch") == "10.0"
    assert grade_text({"graderaw": 55, "grademax": 100}, "dutch") == "6.0"  # 5.95 rounds up
    assert grade_text({"graderaw": 101, "grademax": 100}, "dutch") is None  # not clamped
    assert grade_text({"graderaw": None, "grademax": 100}, "dutch") is None
    assert grade_text({"gradeformatted": "-"}, "formatted") is None


CONFORMANCE = Path(__file__).parent.parent / "conformance"


def course_item(name: str) -> dict[str, object]:
    """The course total of a gradereport_user_get_grade_items answer in the corpus."""
    answer = json.loads((CONFORMANCE / "moodle" / name).read_text())["payload"]
    (item,) = [i for i in answer["usergrades"][0]["gradeitems"] if i["itemtype"] == "course"]
    return dict(item)


@pytest.mark.parametrize(
    ("name", "dutch", "percent", "raw", "formatted"),
    [
        ("grade-items-80.json", "8.2", "80.0", "80", "80.00"),  # Moodle's own test: 80 of 100
        ("grade-items-pass-icon.json", "8.2", "80.0", "80", "80.00"),  # the icon is markup
        ("grade-items-letter.json", "8.2", "80.0", "80", "B-"),
        ("grade-items-percentage.json", "8.2", "80.0", "80", "80.00 %"),
        ("grade-items-needsupdate.json", None, None, None, None),  # "Error"
        ("grade-items-hidden.json", None, None, None, None),  # "-"
        ("grade-items-hidden-by-date.json", None, None, None, None),  # a date
    ],
)
def test_the_grade_comes_from_moodles_number_not_its_display_text(
    name: str, dutch: str | None, percent: str | None, raw: str | None, formatted: str | None
) -> None:
    item = course_item(name)
    shown = [grade_text(item, style) for style in ("dutch", "percent", "raw", "formatted")]
    assert shown == [dutch, percent, raw, formatted]


@respx.mock
def test_moodle_ws_error_body_is_a_typed_error_not_data() -> None:
    route = respx.post(f"{MOODLE}/webservice/rest/server.php")
    route.respond(
        200,
        json={
            "exception": "moodle_exception",
            "errorcode": "invalidtoken",
            "message": "Invalid token",
        },
    )
    with pytest.raises(MoodleError) as info:
        MoodleWS(MOODLE, "bad").completion_status("12", "57")
    assert info.value.code == "moodle_invalidtoken" and isinstance(info.value, Permanent)
    route.respond(200, json={"exception": "x", "errorcode": "sitemaintenance"})
    with pytest.raises(Transient):
        MoodleWS(MOODLE, "t").completion_status("12", "57")
    route.respond(503)
    with pytest.raises(Transient):
        MoodleWS(MOODLE, "t").completion_status("12", "57")
    form = dict(httpx.QueryParams(route.calls.last.request.content.decode()))
    assert form["wsfunction"] == "core_completion_get_course_completion_status"
    assert form["moodlewsrestformat"] == "json"


@respx.mock
def test_moodle_list_params_use_moodle_form_encoding() -> None:
    route = respx.post(f"{MOODLE}/webservice/rest/server.php").respond(
        200, json=[{"id": 57, "idnumber": "EMP-57"}]
    )
    assert MoodleWS(MOODLE, "t").user_field("57", "idnumber") == "EMP-57"
    form = dict(httpx.QueryParams(route.calls.last.request.content.decode()))
    assert form["values[0]"] == "57" and form["field"] == "id"


def test_lp_data_keeps_only_completions() -> None:
    parsed = ilias.parse(
        (FIXTURES / "ilias-getLearningProgressChanges.xml").read_text(),
        S.sources.typed(IliasSource),
    )
    kinds = [type(p).__name__ for p in parsed]
    assert kinds == ["Completion", "Ignored", "Ignored"]
    done = parsed[0]
    assert isinstance(done, Completion)
    assert (done.event.person_id, done.event.course_id) == ("57", "312")
    assert done.event.completed_at.isoformat() == "2026-11-20T10:22:11+01:00"
    failed = parsed[2]
    assert isinstance(failed, Ignored) and "3 (failed)" in failed.reason


def test_ilias_push_with_mark() -> None:
    (done,) = ilias.parse(
        json.loads((FIXTURES / "ilias-updateStatus.json").read_text()), S.sources.typed(IliasSource)
    )
    assert isinstance(done, Completion) and done.event.grade == "7,5"
    with pytest.raises(ValueError):
        ilias.parse("<NotLPData/>", S.sources.typed(IliasSource))


def test_an_ilias_push_by_ref_id_files_under_the_obj_id() -> None:
    """updateStatus carries no ref_id: with ``course_field: ref_id`` a pushed completion falls
    back to the obj_id, as a pulled change without RefIds does."""
    by_ref = S.sources.typed(IliasSource).model_copy(update={"course_field": "ref_id"})
    data = json.loads((FIXTURES / "ilias-updateStatus.json").read_text())
    (done,) = ilias.parse(data, by_ref)
    assert isinstance(done, Completion) and done.event.course_id == "312"


def test_soap_envelope_and_fault_mapping() -> None:
    body = envelope(
        "getLearningProgressChanges",
        [("sid", "s<1>"), ("include_ref_ids", True), ("type_filter", ["crs"])],
    )
    assert b"s&lt;1&gt;" in body and b"xsd:string[1]" in body and b">true<" in body
    fault = (
        b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body>'
        b"<e:Fault><faultstring>Session not valid</faultstring></e:Fault></e:Body></e:Envelope>"
    )
    with pytest.raises(Transient):
        result(fault, "x", "lp_data")
    denied = fault.replace(b"Session not valid", b"Permission denied")
    with pytest.raises(Permanent):
        result(denied, "x", "lp_data")


@respx.mock
def test_ilias_login_over_http() -> None:
    url = "https://ilias.test/webservice/soap/server.php"
    respx.post(url).respond(
        200,
        content=(
            b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body>'
            b"<loginResponse><sid>abc::client</sid></loginResponse></e:Body></e:Envelope>"
        ),
    )
    assert IliasSoap(url).login("client", "u", "p") == "abc::client"


def test_anewspring_mapping_and_missing_grade_needs_a_fetch() -> None:
    (done,) = anewspring.parse(
        json.loads((FIXTURES / "anewspring-webhook.json").read_text()),
        S.sources.typed(ANewSpringSource),
    )
    assert isinstance(done, Completion)
    assert (done.event.person_id, done.event.course_id, done.needs) == ("57", "12", ("grade",))
    nested = {
        "event": "completed",
        "data": {
            "userID": "u1",
            "courseID": "c1",
            "grade": 8,
            "completeDate": "2026-11-20T10:00:00Z",
        },
    }
    (done,) = anewspring.parse(nested, S.sources.typed(ANewSpringSource))
    assert isinstance(done, Completion) and done.event.grade == "8" and done.needs == ()


def anewspring_event(data: object) -> str:
    (done,) = anewspring.parse(data, S.sources.typed(ANewSpringSource))
    assert isinstance(done, Completion)
    return done.event.id


def test_an_anewspring_webhook_without_an_id_is_told_apart_by_its_content() -> None:
    """aNewSpring resends a webhook until it is answered: the same body is the same event, and
    two learners' completions without an ``id`` are never one."""
    data = json.loads((FIXTURES / "anewspring-webhook.json").read_text())
    assert anewspring_event(data) == "anewspring-evt-5501"
    del data["id"]
    other = {**data, "userID": "58"}
    assert anewspring_event(data) == anewspring_event(dict(data))
    assert len({anewspring_event(data), anewspring_event(other)}) == 2


def test_an_anewspring_event_is_named_by_event_in_json_and_by_type_in_xml() -> None:
    data = json.loads((FIXTURES / "anewspring-webhook.json").read_text())
    inst = S.sources.typed(ANewSpringSource)
    # A JSON body's own field named type never renames its event.
    (done,) = anewspring.parse({**data, "type": "groupChanged"}, inst)
    assert isinstance(done, Completion)
    (ignored,) = anewspring.parse({**data, "event": "groupChanged", "type": "completed"}, inst)
    assert isinstance(ignored, Ignored)
    del data["event"]
    (done,) = anewspring.parse({**data, "type": "completed"}, inst)  # the XML form
    assert isinstance(done, Completion)
    with pytest.raises(ValidationError) as unnamed:
        anewspring.parse(data, inst)
    assert [error["loc"] for error in unnamed.value.errors()] == [("event",)]


@pytest.mark.parametrize(
    ("kind", "takes"),
    [
        ("moodle", "a Moodle webhook body must be a JSON object"),
        ("ilias", "an ILIAS payload is LPData XML or an updateStatus JSON object"),
        ("anewspring", "an aNewSpring webhook body must be a JSON object"),
    ],
)
@pytest.mark.parametrize("data", [[{"event": "completed"}], 312, None])
def test_a_payload_of_another_kind_is_told_what_the_parser_takes(
    kind: str, takes: str, data: object
) -> None:
    with pytest.raises(ValueError) as refused:
        NATIVE[kind](data, S.sources.find(kind))
    assert str(refused.value) == takes


@pytest.mark.parametrize(
    ("score", "grade"),
    [
        ({"raw": 8.5, "min": 1, "max": 10}, "8.5"),
        # Issue 24: min counts (the dutch 1 + 9 × (raw − min) / (max − min) of grades.py).
        ({"raw": 60, "min": 20, "max": 100}, "5.5"),
        ({"scaled": 0.85}, "8.7"),
        ({"scaled": 0.85, "raw": 17, "min": 0, "max": 20}, "8.7"),  # scaled first
        # A raw score without its range is no grade, never a raw number taken for one.
        ({"raw": 8.5}, None),
        ({"raw": 17, "max": 20}, None),
        (None, None),
    ],
)
def test_xapi_grades(score: dict[str, float] | None, grade: str | None) -> None:
    data = json.loads((FIXTURES / "xapi-completed.json").read_text())
    data["result"] = {"score": score} if score else {}
    (done,) = xapi.parse(data, S.sources.typed(XapiSource))
    assert isinstance(done, Completion) and done.event.grade == grade
    assert done.event.course_id == "12" and done.event.person_id == "57"


def test_xapi_other_verbs_are_ignored() -> None:
    data = json.loads((FIXTURES / "xapi-completed.json").read_text())
    data["verb"]["id"] = "http://adlnet.gov/expapi/verbs/attempted"
    (ignored,) = xapi.parse(data, S.sources.typed(XapiSource))
    assert isinstance(ignored, Ignored)


def test_standard_webhooks_reference_vector() -> None:
    # The example in the Standard Webhooks spec (standard-webhooks/standard-webhooks README).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    sig = standard_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body)
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": f"v1,other {sig}",
    }
    assert verify_standard([secret], headers, body, now=1614265330) == headers["webhook-id"]
    assert signing_key("plain") == b"plain"


def test_lp_data_with_entity_expansion_is_refused() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE LPData [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<LPData><LPChange UserId="&b;" ObjId="1" Timestamp="2026-11-20 10:00:00" LPStatus="2"/>'
        "</LPData>"
    )
    with pytest.raises(ValueError, match="not acceptable XML"):
        ilias.parse(bomb, S.sources.typed(IliasSource))


def test_one_bad_lp_change_row_is_rejected_alone() -> None:
    lp_data = (
        "<LPData>"
        '<LPChange UserId="7" ObjId="1" RefIds="" Timestamp="0000-00-00 00:00:00" LPStatus="1"/>'
        '<LPChange UserId="8" ObjId="1" RefIds="" Timestamp="0000-00-00 00:00:00" LPStatus="2"/>'
        '<LPChange UserId="9" ObjId="1" RefIds="" Timestamp="2026-11-20 10:00:00" LPStatus="2"/>'
        "</LPData>"
    )
    ignored, rejected, done = ilias.parse(lp_data, S.sources.typed(IliasSource))
    assert isinstance(ignored, Ignored) and "in progress" in ignored.reason
    assert isinstance(rejected, Rejected) and rejected.reason.startswith("LPChange #2: ")
    assert "Timestamp" in rejected.reason
    assert isinstance(done, Completion) and done.event.person_id == "9"


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ([], "the answer"),
        ({"usergrades": "x"}, "usergrades"),
        ({"usergrades": ["x"]}, "usergrades.0"),
        ({"usergrades": [{"gradeitems": None}]}, "usergrades.0.gradeitems"),
        ({"usergrades": [{"gradeitems": ["x"]}]}, "usergrades.0.gradeitems.0"),
    ],
)
@respx.mock
def test_a_grade_report_of_another_shape_is_said_naming_the_field(
    answer: object, field: str
) -> None:
    """Was an ``unexpected_error`` with this module's path and line (finding: malformed grade
    report); now the typed error the completion status answer gets, naming where."""
    respx.post(f"{MOODLE}/webservice/rest/server.php").respond(200, json=answer)
    with pytest.raises(MoodleError) as info:
        MoodleWS(MOODLE, "t").course_total("12", "57")
    assert info.value.code == "moodle_unexpected_response"
    assert field in info.value.message


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"graderaw": 80, "gradeishidden": True}, "gradeishidden"),
        ({"graderaw": None, "gradeneedsupdate": True}, "gradeneedsupdate"),
        ({"graderaw": None}, "no grade yet"),
        ({"graderaw": 110}, "outside grademin–grademax"),
    ],
)
def test_why_a_course_total_is_not_a_grade_is_said(fields: dict[str, object], said: str) -> None:
    """The record said "no course total yet" for each (finding: a total above its maximum, as
    Moodle's unlimitedgrades allows, waits its 30 daily retries for nothing, unsaid)."""
    item = {"itemtype": "course", "grademin": 0, "grademax": 100, **fields}
    assert grade_text(item, "dutch") is None
    assert said in why_not_a_grade(item)
