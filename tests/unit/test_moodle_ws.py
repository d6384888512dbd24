"""Moodle's REST web service as gradesync calls it: the form Moodle reads, and its answers.

``POST {MOODLE_URL}/webservice/rest/server.php`` with ``wstoken``, ``wsfunction``,
``moodlewsrestformat=json`` and the function's parameters, lists as ``name[0]`` (Moodle's
``webservice/rest/server.php``); a failure is HTTP 200 with ``{"exception", "errorcode",
"message"}`` (tests/conformance/moodle/completion-status-usernotenroled.json, from moodle/moodle
``completion/classes/external.php``). The grade report is
tests/fixtures/moodle-gradereport_user_get_grade_items.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gradesync.errors import Transient
from gradesync.lms.moodle import MoodleError, MoodleWS

MOODLE = "https://moodle.test"
TESTS = Path(__file__).parent.parent
GRADE_REPORT = json.loads(
    (TESTS / "fixtures" / "moodle-gradereport_user_get_grade_items.json").read_text()
)
NOT_ENROLLED = json.loads(
    (TESTS / "conformance" / "moodle" / "completion-status-usernotenroled.json").read_text()
)["payload"]


class Moodle:
    """A Moodle web service that answers every call with one body, and keeps the requests."""

    def __init__(self, body: Any, status: int = 200) -> None:
        self.body, self.status = body, status
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.body, bytes):
            return httpx.Response(self.status, content=self.body)
        return httpx.Response(self.status, json=self.body)

    def ws(self, base_url: str = MOODLE) -> MoodleWS:
        return MoodleWS(base_url, "token-1", transport=httpx.MockTransport(self.handle))

    def form(self) -> dict[str, str]:
        return dict(httpx.QueryParams(self.requests[-1].content.decode()))


@pytest.mark.parametrize(
    ("base_url", "server"),
    [
        (MOODLE, MOODLE),
        (f"{MOODLE}/", MOODLE),
        (f"{MOODLE}//", MOODLE),  # as an operator typed it
        ("https://school.test/MX/", "https://school.test/MX"),  # a path prefix is kept whole
    ],
)
def test_a_call_posts_the_token_function_and_parameters_moodle_reads(
    base_url: str, server: str
) -> None:
    site = Moodle(GRADE_REPORT)
    item = site.ws(base_url).course_total("12", "57")
    assert item is not None and item["itemtype"] == "course" and item["graderaw"] == 8.5
    (request,) = site.requests
    assert request.method == "POST"
    assert str(request.url) == f"{server}/webservice/rest/server.php"
    assert site.form() == {
        "wstoken": "token-1",
        "wsfunction": "gradereport_user_get_grade_items",
        "moodlewsrestformat": "json",
        "courseid": "12",
        "userid": "57",
    }
    # Moodle gets ten seconds to answer (enrichment uses the default).
    assert request.extensions["timeout"] == dict.fromkeys(
        ("connect", "read", "write", "pool"), 10.0
    )


def test_lists_are_sent_as_moodles_indexed_fields() -> None:
    site = Moodle([{"id": 57, "idnumber": "EMP-57"}])
    site.ws().call("core_user_get_users_by_field", field="id", values=["57", 58], ids=(1,))
    form = site.form()
    assert {k: form[k] for k in ("field", "values[0]", "values[1]", "ids[0]")} == {
        "field": "id",
        "values[0]": "57",
        "values[1]": "58",
        "ids[0]": "1",
    }
    assert "values" not in form and "ids" not in form


def test_moodles_error_body_is_a_typed_error_with_its_code_and_message() -> None:
    site = Moodle(NOT_ENROLLED)
    with pytest.raises(MoodleError) as info:
        site.ws().completion_status("12", "57")
    assert site.form() == {
        "wstoken": "token-1",
        "wsfunction": "core_completion_get_course_completion_status",
        "moodlewsrestformat": "json",
        "courseid": "12",
        "userid": "57",
    }
    assert info.value.code == "moodle_usernotenroled"
    assert info.value.message == (
        "moodle core_completion_get_course_completion_status: usernotenroled: "
        "Gebruiker is niet aangemeld in deze cursus"
    )


@pytest.mark.parametrize("code", ["servicerequireslogin", "sitemaintenance"])
def test_errors_a_later_attempt_may_not_see_are_transient(code: str) -> None:
    body = {"exception": "moodle_exception", "errorcode": code, "message": "Later"}
    with pytest.raises(Transient) as info:
        Moodle(body).ws().course_total("12", "57")
    assert info.value.code == f"moodle_{code}"
    assert info.value.message == f"moodle gradereport_user_get_grade_items: {code}: Later"


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"exception": "x"}, "moodle_unknown", "moodle f: unknown: "),
        ({"exception": "x", "errorcode": ""}, "moodle_unknown", "moodle f: unknown: "),
        (
            {"exception": "x", "errorcode": "a b"},
            "moodle_unreadable_errorcode",
            "moodle f: unreadable_errorcode: ",
        ),
        (
            {"exception": "x", "errorcode": "e", "message": "a\x1b[2Jb\nc"},
            "moodle_e",
            "moodle f: e: a [2Jb c",
        ),
    ],
)
def test_an_error_body_is_passed_on_only_as_readable_text(
    body: dict[str, str], code: str, message: str
) -> None:
    with pytest.raises(MoodleError) as info:
        Moodle(body).ws().call("f")
    assert (info.value.code, info.value.message) == (code, message)


def test_a_long_error_message_is_cut_to_300_characters() -> None:
    body = {"exception": "x", "errorcode": "e", "message": "m" * 400}
    with pytest.raises(MoodleError) as info:
        Moodle(body).ws().call("f")
    assert info.value.message == ("moodle f: e: " + "m" * 400)[:300]


@pytest.mark.parametrize(
    ("status", "body", "code", "message"),
    [
        (
            200,
            b"<html>Moodle is being upgraded",
            "moodle_bad_response",
            "moodle f: response is not JSON",
        ),
        (503, b"", "http_503", "moodle f: HTTP 503"),
    ],
)
def test_an_answer_that_is_not_moodles_json_is_transient(
    status: int, body: bytes, code: str, message: str
) -> None:
    with pytest.raises(Transient) as info:
        Moodle(body, status).ws().call("f")
    assert info.value.code == code and info.value.message.startswith(message)


def test_a_report_without_a_course_total_has_none() -> None:
    mods_only = {"usergrades": [{"gradeitems": [{"itemtype": "mod", "graderaw": 85.0}]}, {}]}
    assert Moodle(mods_only).ws().course_total("12", "57") is None
    later = {
        "usergrades": [{"gradeitems": []}, {"gradeitems": [{"itemtype": "course", "graderaw": 8}]}]
    }
    assert Moodle(later).ws().course_total("12", "57") == {"itemtype": "course", "graderaw": 8}


def test_a_completion_status_that_is_not_an_object_is_unexpected() -> None:
    with pytest.raises(MoodleError) as info:
        Moodle([]).ws().completion_status("12", "57")
    assert info.value.code == "moodle_unexpected_response"
    assert info.value.message.startswith(
        "moodle core_completion_get_course_completion_status: unexpected answer: "
    )


def test_a_users_field_is_asked_again_once_its_ten_minutes_are_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])  # the cache's clock
    site = Moodle([{"id": 57, "idnumber": "EMP-57"}])
    ws = site.ws()
    assert ws.user_field("57", "idnumber") == "EMP-57"
    form = site.form()
    assert (form["wsfunction"], form["field"], form["values[0]"]) == (
        "core_user_get_users_by_field",
        "id",
        "57",
    )
    site.body = [{"id": 57, "idnumber": "EMP-570"}]  # an administrator corrects it
    clock[0] += 599.0
    assert ws.user_field("57", "idnumber") == "EMP-57"
    clock[0] += 1.0
    assert ws.user_field("57", "idnumber") == "EMP-570"
    assert len(site.requests) == 2
    site.body = [{"id": 57, "idnumber": "EMP-570", "username": "anna"}]
    assert ws.user_field("57", "username") == "anna"  # another field is its own entry
    assert len(site.requests) == 3


def test_a_field_moodle_leaves_out_is_said_to_be_missing_or_hidden() -> None:
    with pytest.raises(MoodleError) as info:
        Moodle([{"id": 57, "fullname": "Anna"}]).ws().user_field("57", "idnumber")
    assert info.value.message == (
        "moodle core_user_get_users_by_field: idnumber not shown: the learner has none in "
        "Moodle, or the token's user needs moodle/user:viewalldetails (or idnumber among the "
        "site's identity fields)"
    )
