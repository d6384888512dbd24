"""Guards of the LMS adapters that only a mutation run showed untested (issue 22): the Dutch
grade on a Moodle course whose minimum is not 0, a course looked up by idnumber or shortname,
a negative xAPI ``scaled`` score, and an xAPI ``object.id`` the course pattern does not match."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from pydantic import ValidationError

from gradesync.lms.moodle import MoodleWS, grade_text
from gradesync.parsed import Completion, Ignored
from gradesync.settings import get_settings
from gradesync.sources import IliasSource, InstanceMismatch, XapiSource
from producers import ilias, xapi

FIXTURES = Path(__file__).parent.parent / "fixtures"
MOODLE = "https://moodle.test"
WS = f"{MOODLE}/webservice/rest/server.php"


def test_the_dutch_grade_counts_from_the_courses_own_minimum() -> None:
    # 60 on 20–100 is half-way: 1 + 9 × 0.5; counting from 0 (or adding the minimum) is not.
    assert grade_text({"graderaw": 60, "grademin": 20, "grademax": 100}, "dutch") == "5.5"
    assert grade_text({"graderaw": 20, "grademin": 20, "grademax": 100}, "dutch") == "1.0"
    assert grade_text({"graderaw": 100, "grademin": 20, "grademax": 100}, "dutch") == "10.0"
    # An empty range is no grade, not a division by zero.
    assert grade_text({"graderaw": 20, "grademin": 20, "grademax": 20}, "dutch") is None


# core_course_get_courses_by_field's answer (moodle/moodle course/externallib.php,
# get_courses_by_field_returns: courses[{id, fullname, shortname, idnumber, …}], warnings[]).
COURSES = {
    "courses": [
        {"id": 12, "fullname": "VCA Basis", "shortname": "VCA-B", "idnumber": "VCA-2026"},
    ],
    "warnings": [],
}


@respx.mock
@pytest.mark.parametrize(("field", "value"), [("idnumber", "VCA-2026"), ("shortname", "VCA-B")])
def test_a_course_field_is_read_from_the_course_asked_for(field: str, value: str) -> None:
    route = respx.post(WS).respond(200, json=COURSES)
    assert MoodleWS(MOODLE, "t").course_field("12", field) == value
    sent = parse_qs(route.calls.last.request.content.decode())
    assert sent["wsfunction"] == ["core_course_get_courses_by_field"]
    assert sent["field"] == ["id"] and sent["value"] == ["12"]


@respx.mock
@pytest.mark.parametrize(
    "answer",
    [
        {"courses": [], "warnings": []},
        {"courses": [{"id": 12, "shortname": "VCA-B", "idnumber": ""}], "warnings": []},
        {"courses": [{"id": 12, "shortname": "VCA-B", "idnumber": None}], "warnings": []},
    ],
)
def test_a_course_without_the_field_has_no_value(answer: dict[str, object]) -> None:
    respx.post(WS).mock(return_value=httpx.Response(200, json=answer))
    assert MoodleWS(MOODLE, "t").course_field("12", "idnumber") is None


def statement(**changes: object) -> dict[str, object]:
    data: dict[str, object] = json.loads((FIXTURES / "xapi-completed.json").read_text())
    data.update(changes)
    return data


def xapi_source(**fields: object) -> XapiSource:
    base = get_settings().sources.typed(XapiSource)
    login = {"basic_auth": {"username": "lrs", "password": "a-long-test-password"}}
    return XapiSource.model_validate(base.model_dump() | login | fields)


def test_a_negative_scaled_score_is_a_completion_with_the_lowest_grade() -> None:
    # xAPI 1.0.3 (Data 2.5.1.1, Score): scaled is a decimal from -1 to 1 inclusive.
    inst = xapi_source()
    lowest, negative = (
        xapi.parse(statement(result={"score": {"scaled": scaled}}), inst) for scaled in (0, -0.5)
    )
    (at_zero,), (below,) = lowest, negative
    assert isinstance(at_zero, Completion) and isinstance(below, Completion)
    assert below.event.grade == at_zero.event.grade is not None


def test_an_object_id_the_course_pattern_does_not_match_is_ignored_naming_why() -> None:
    # A log store sends completed for every activity too: those are answered 200 and left
    # alone with a counted reason, never a 4xx that makes it resend (issue 24).
    inst = xapi_source(course_pattern=r"/course/(?P<course>\d+)$")
    (skipped,) = xapi.parse(statement(object={"id": "https://lms.example.nl/quiz/abc"}), inst)
    assert isinstance(skipped, Ignored) and "does not match the course pattern" in skipped.reason


def test_a_pattern_without_the_named_group_is_refused_when_the_sources_load() -> None:
    with pytest.raises(ValidationError, match=r"needs a named group \(\?P<course>"):
        xapi_source(course_pattern=r"\d+$")
    named = xapi_source(course_pattern=r"(?P<course>course)/view\.php\?id=\d+$")
    (done,) = xapi.parse(statement(), named)
    assert isinstance(done, Completion) and done.event.course_id == "course"


def test_an_ilias_push_naming_another_installation_is_refused_naming_the_field() -> None:
    inst = get_settings().sources.typed(IliasSource)
    data = json.loads((FIXTURES / "ilias-updateStatus.json").read_text())
    with pytest.raises(InstanceMismatch) as info:
        ilias.parse({**data, "instance": "elsewhere"}, inst)
    assert info.value.field == "instance"
    assert str(info.value) == (
        f"names another installation than this route's ({inst.name}): the installation comes "
        "from the route, send the event to that installation's route"
    )
