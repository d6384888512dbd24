"""The aNewSpring API as gradesync calls it: which request, and what the learner's results mean.

``GET https://<domain>/api/getResults/{userID}?asStudent=true`` with ``X-API-Key``, answering
``{"courses": [...]}`` or 404 for a learner it does not know (telartis/anewspring
``anewspring.php``; the course fields from kroutled/ansapi ``models.go``). The answer below is
tests/conformance/anewspring/getResults.json, which cites both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from gradesync.errors import Permanent, Transient, UnexpectedResponse
from gradesync.lms.anewspring import ANewSpringAPI

ASP = "https://asp.test"
RESULTS: dict[str, Any] = json.loads(
    (Path(__file__).parent.parent / "conformance" / "anewspring" / "getResults.json").read_text()
)["payload"]
COURSE = RESULTS["courses"][0]  # id "12", uid "c0a8-12", grade "7.85"


class ANewSpring:
    """An aNewSpring that answers every request with one response, and keeps the requests."""

    def __init__(self, status: int = 200, body: Any = RESULTS) -> None:
        self.requests: list[httpx.Request] = []
        self.status, self.body = status, body

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.body, bytes):
            return httpx.Response(self.status, content=self.body)
        return httpx.Response(self.status, json=self.body)

    def api(self, base_url: str = ASP) -> ANewSpringAPI:
        return ANewSpringAPI(base_url, "key-1", transport=httpx.MockTransport(self.handle))


def with_courses(*courses: Any) -> ANewSpring:
    return ANewSpring(body={"courses": list(courses)})


@pytest.mark.parametrize(
    ("base_url", "user", "url"),
    [
        (ASP, "57", f"{ASP}/api/getResults/57?asStudent=true"),
        (f"{ASP}//", "57", f"{ASP}/api/getResults/57?asStudent=true"),  # as an operator typed it
        (
            "https://proxy.test/ANSX/",
            "57",
            "https://proxy.test/ANSX/api/getResults/57?asStudent=true",
        ),
        (ASP, "a/b c", f"{ASP}/api/getResults/a%2Fb%20c?asStudent=true"),  # one path segment
    ],
)
def test_results_are_asked_for_one_learner_with_the_api_key(
    base_url: str, user: str, url: str
) -> None:
    asp = ANewSpring()
    assert asp.api(base_url).result(user, "12") == COURSE
    (request,) = asp.requests
    assert request.method == "GET" and str(request.url) == url
    assert request.headers["X-API-Key"] == "key-1"
    assert request.headers["Accept"] == "application/json"
    # aNewSpring gets ten seconds to answer (enrichment uses the default).
    assert request.extensions["timeout"] == dict.fromkeys(
        ("connect", "read", "write", "pool"), 10.0
    )


def test_the_course_is_found_by_its_id_or_its_uid_among_other_entries() -> None:
    other = {**COURSE, "id": "13", "uid": "c0a8-13", "grade": "5"}
    asp = with_courses("not a course", other, COURSE)
    assert asp.api().result("57", "12") == COURSE
    assert asp.api().result("57", "c0a8-12") == COURSE
    assert asp.api().result("57", "14") is None


def test_a_learner_anewspring_does_not_know_has_no_result() -> None:
    assert ANewSpring(404, {"error": "not found"}).api().result("57", "12") is None


@pytest.mark.parametrize(
    ("status", "body", "kind", "message"),
    [
        (
            200,
            {"courses": {"12": COURSE}},
            UnexpectedResponse,
            "anewspring getResults: field 'courses' is not a list",
        ),
        (405, {"error": "GET only"}, Permanent, "anewspring getResults: HTTP 405"),
        (503, b"Service Unavailable", Transient, "anewspring getResults: HTTP 503"),
    ],
)
def test_other_answers_are_typed_errors_naming_the_call(
    status: int, body: Any, kind: type[Exception], message: str
) -> None:
    with pytest.raises(kind) as info:
        ANewSpring(status, body).api().result("57", "12")
    assert isinstance(info.value, Permanent | Transient)
    assert info.value.message.startswith(message)


@pytest.mark.parametrize(
    ("grade", "style", "separator", "text"),
    [
        ("7.85", "raw", ".", "7.85"),
        ("7,85", "raw", ".", "7.85"),  # a decimal comma is read as one
        ("7.85", "raw", ",", "7,85"),
        ("7.85", "dutch", ",", "7,9"),  # the Dutch 1–10 mark, one decimal, half up
        (" 7,85 ", "formatted", ".", "7,85"),  # as aNewSpring shows it
        ("passed", "dutch", ".", None),  # not a number: no grade rather than a guess
        ("", "formatted", ".", None),
        ("", "raw", ".", None),
        (None, "raw", ".", None),
    ],
)
def test_the_grade_as_the_installation_writes_it(
    grade: str | None, style: Any, separator: Any, text: str | None
) -> None:
    api = with_courses({**COURSE, "grade": grade}).api()
    assert api.grade("57", "12", style, separator) == text


def test_the_grade_is_the_raw_number_with_a_point_by_default() -> None:
    assert with_courses({**COURSE, "grade": "7.50"}).api().grade("57", "12") == "7.5"


def test_no_entry_for_the_course_is_no_grade_yet() -> None:
    assert with_courses({**COURSE, "id": "13", "uid": "x"}).api().grade("57", "12") is None
    assert ANewSpring(404, {}).api().grade("57", "12") is None
