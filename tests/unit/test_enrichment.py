"""What the worker fetches from a record's own LMS installation before Coachview is written
(gradesync/lms/enrich.py): which course and learner it asks about, what each of Moodle's
refusals becomes, the words a record keeps for the operator, and the learner and course fields
it maps. Moodle's and aNewSpring's answers are the conformance corpus's literal examples
(tests/conformance/README.md names where each comes from)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
import yaml

from gradesync.completion_time import CompletionInstant
from gradesync.errors import Permanent, Unresolved
from gradesync.event import CompletionEvent
from gradesync.lms import enrich as enrich_module
from gradesync.lms.enrich import enrich
from gradesync.lms.moodle import MoodleError
from gradesync.parsed import NEEDS_GRADE, NEEDS_MOODLE_PERSON
from gradesync.record import Record
from gradesync.settings import Settings

CONFORMANCE = Path(__file__).parent.parent / "conformance"
FIXTURES = Path(__file__).parent.parent / "fixtures"
MOODLE = "https://moodle.test"
WS = f"{MOODLE}/webservice/rest/server.php"
ASP = "https://asp.test"
COMPLETED_AT = "2026-11-20T00:20:00+01:00"
ENV = {
    "CAMPUS_HOOK": "campus-moodle-webhook-token",
    "CAMPUS_WS": "campus-ws-token",
    "ACADEMY_KEY": "an-academy-hmac-key-0001",
    "ACADEMY_API": "academy-api-key",
    "LRS_PASSWORD": "lrs-basic-auth-password",
}


def corpus(name: str) -> Any:
    return json.loads((CONFORMANCE / name).read_text())["payload"]


# core_completion_get_course_completion_status: completed, two criteria, the latest at
# 1795128000 (23:40 in Amsterdam the day before the event's 00:20 +01:00).
STATUS = json.loads(
    (FIXTURES / "moodle-core_completion_get_course_completion_status.json").read_text()
)
MOODLE_INSTANT = CompletionInstant(
    at=datetime.fromtimestamp(1795128000, UTC), source="moodle_completion_criteria"
)
EVENT_INSTANT = CompletionInstant(at=datetime.fromisoformat(COMPLETED_AT), source="event")
# core_course_get_courses_by_field (moodle/moodle course/externallib.php,
# get_courses_by_field_returns: courses[{id, fullname, shortname, idnumber, …}], warnings[]).
COURSES = {
    "courses": [{"id": 12, "fullname": "VCA Basis", "shortname": "VCA-B", "idnumber": ""}],
    "warnings": [],
}
# core_user_get_users_by_field (moodle/moodle user/externallib.php: a list of user details;
# an empty ID number is shown as "" to a token that may see it).
USERS = [{"id": 57, "username": "anna", "idnumber": "CV-57", "email": ""}]


@pytest.fixture(autouse=True)
def fresh_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # One client per LMS address and credential is kept (with its user-field cache): each
    # test starts without another test's answers.
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    enrich_module._moodle.cache_clear()
    enrich_module._anewspring.cache_clear()
    yield
    enrich_module._moodle.cache_clear()
    enrich_module._anewspring.cache_clear()


def moodle(**more: Any) -> dict[str, Any]:
    return {
        "kind": "moodle",
        "instance": "campus",
        "secret_env": "CAMPUS_HOOK",
        "api": {"url": MOODLE, "credential_env": "CAMPUS_WS"},
        "person_field": "id",
        **more,
    }


def anewspring(**more: Any) -> dict[str, Any]:
    return {
        "kind": "anewspring",
        "instance": "academy",
        "secret_env": "ACADEMY_KEY",
        "api": {"url": ASP, "credential_env": "ACADEMY_API"},
        **more,
    }


def xapi(**more: Any) -> dict[str, Any]:
    return {
        "kind": "xapi",
        "instance": "lrs",
        "basic_auth": {"username": "logstore", "password_env": "LRS_PASSWORD"},
        "moodle": "campus",
        **more,
    }


def settings(tmp_path: Path, *installations: dict[str, Any]) -> Settings:
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({"installations": list(installations)}, sort_keys=False))
    return Settings(GRADESYNC_SOURCES=str(path), GRADESYNC_INSECURE_DEV="0")


def record(source: str = "moodle", instance: str = "campus", need: str = NEEDS_GRADE) -> Record:
    event = CompletionEvent.model_validate(
        {
            "source": source,
            "source_instance": instance,
            "person_id": "57",
            "course_id": "12",
            "completed_at": COMPLETED_AT,
        }
    )
    at = datetime.fromisoformat("2026-11-20T14:00:00+00:00")
    return Record(event=event, state="in_progress", first_seen=at, updated=at, needs=[need])


# Moodle's answer to a token it does not know (webservice/lib.php: invalidtoken).
INVALID_TOKEN = {"exception": "moodle_exception", "errorcode": "invalidtoken", "message": "x"}


class FakeMoodle:
    """Moodle's REST server: each web-service function answers as given to the installation's
    token (any other is refused as Moodle does), and every call is kept as (function, the ids
    it named)."""

    def __init__(self, **answers: Any) -> None:
        self.answers = {
            "core_completion_get_course_completion_status": STATUS,
            "gradereport_user_get_grade_items": corpus("moodle/grade-items-80.json"),
            "core_user_get_users_by_field": USERS,
            "core_course_get_courses_by_field": COURSES,
            **answers,
        }
        self.asked: list[tuple[str, dict[str, str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        function = form.pop("wsfunction")
        if form.get("wstoken") != ENV["CAMPUS_WS"]:
            return httpx.Response(200, json=INVALID_TOKEN)
        ids = {k: v for k, v in form.items() if k not in ("wstoken", "moodlewsrestformat")}
        self.asked.append((function, ids))
        return httpx.Response(200, json=self.answers[function])


def serve(fake: FakeMoodle) -> FakeMoodle:
    respx.post(WS).mock(side_effect=fake)
    return fake


STATUS_OF_57_IN_12 = (
    "core_completion_get_course_completion_status",
    {"courseid": "12", "userid": "57"},
)
REPORT_OF_57_IN_12 = ("gradereport_user_get_grade_items", {"courseid": "12", "userid": "57"})


# -- Moodle: the grade and the instant of the record's own course and learner ------------------


@respx.mock
def test_moodle_is_asked_about_the_records_course_and_learner(tmp_path: Path) -> None:
    fake = serve(FakeMoodle())
    found = enrich(record(), settings(tmp_path, moodle(decimal_separator=",")))
    assert found is not None
    assert (found.grade, found.instant, found.note) == ("8,2", MOODLE_INSTANT, None)
    assert fake.asked == [STATUS_OF_57_IN_12, REPORT_OF_57_IN_12]


@respx.mock
@pytest.mark.parametrize("code", ["usernotenroled", "nocriteriaset", "cannotviewreport"])
def test_moodle_refusing_its_completion_view_keeps_the_events_time_and_says_so(
    tmp_path: Path, code: str
) -> None:
    refusal = corpus(f"moodle/completion-status-{code}.json")
    fake = serve(FakeMoodle(core_completion_get_course_completion_status=refusal))
    found = enrich(record(), settings(tmp_path, moodle()))
    assert found is not None and (found.grade, found.instant) == ("8.2", EVENT_INSTANT)
    assert found.note == f"moodle answered {code}: completion time from the event (fallback)"
    assert fake.asked == [STATUS_OF_57_IN_12, REPORT_OF_57_IN_12]


@respx.mock
@pytest.mark.parametrize(
    "function", ["core_completion_get_course_completion_status", "gradereport_user_get_grade_items"]
)
def test_any_other_moodle_refusal_fails_the_record_as_moodle_said_it(
    tmp_path: Path, function: str
) -> None:
    serve(FakeMoodle(**{function: INVALID_TOKEN}))
    with pytest.raises(MoodleError) as info:
        enrich(record(), settings(tmp_path, moodle()))
    assert info.value.code == "moodle_invalidtoken"


@respx.mock
def test_a_course_moodle_does_not_call_completed_is_never_written(tmp_path: Path) -> None:
    serve(
        FakeMoodle(
            core_completion_get_course_completion_status={
                "completionstatus": {"completed": False, "aggregation": 1, "completions": []},
                "warnings": [],
            }
        )
    )
    with pytest.raises(Permanent) as info:
        enrich(record(), settings(tmp_path, moodle()))
    assert info.value.code == "not_completed_in_lms"
    assert info.value.message == "Moodle does not report this course as completed for this learner"


@respx.mock
@pytest.mark.parametrize(
    ("report", "message"),
    [
        (
            corpus("moodle/completion-status-usernotenroled.json"),
            "Moodle's grade report is not available: moodle_usernotenroled",
        ),
        (
            {"usergrades": [{"gradeitems": [{"itemtype": "mod", "graderaw": 80}]}], "warnings": []},
            "Moodle's gradebook has no course total yet",
        ),
        (
            corpus("moodle/grade-items-hidden.json"),
            "Moodle: the course total is marked gradeishidden",
        ),
    ],
)
def test_a_grade_moodle_cannot_give_yet_says_why_and_waits(
    tmp_path: Path, report: dict[str, Any], message: str
) -> None:
    fake = serve(FakeMoodle(gradereport_user_get_grade_items=report))
    with pytest.raises(Unresolved) as info:
        enrich(record(), settings(tmp_path, moodle()))
    assert (info.value.reason, info.value.message) == ("grade_unavailable", message)
    assert fake.asked == [STATUS_OF_57_IN_12, REPORT_OF_57_IN_12]


# -- Moodle under completion_only: the record says why it has no grade -------------------------


@respx.mock
def test_completion_only_with_a_web_service_says_no_grade_was_fetched(tmp_path: Path) -> None:
    fake = serve(FakeMoodle())
    found = enrich(record(), settings(tmp_path, moodle(grade_policy="completion_only")))
    assert found is not None and (found.grade, found.instant) == (None, MOODLE_INSTANT)
    assert found.note == "moodle/campus: grade_policy completion_only: no grade fetched"
    assert fake.asked == [STATUS_OF_57_IN_12]


@respx.mock
def test_completion_only_keeps_both_notes_when_moodle_also_refused_its_view(
    tmp_path: Path,
) -> None:
    refusal = corpus("moodle/completion-status-usernotenroled.json")
    serve(FakeMoodle(core_completion_get_course_completion_status=refusal))
    found = enrich(record(), settings(tmp_path, moodle(grade_policy="completion_only")))
    assert found is not None and found.note == (
        "moodle answered usernotenroled: completion time from the event (fallback); "
        "moodle/campus: grade_policy completion_only: no grade fetched"
    )


def test_completion_only_without_a_web_service_says_where_the_time_comes_from(
    tmp_path: Path,
) -> None:
    bare = moodle(grade_policy="completion_only")
    del bare["api"]
    found = enrich(record(), settings(tmp_path, bare))
    assert found is not None and (found.grade, found.instant) == (None, None)
    assert found.note == (
        "moodle/campus: grade_policy completion_only, no Moodle web service: no grade, "
        "completion time from the event"
    )


# -- Moodle: the learner's and the course's fields Coachview knows them by ---------------------


@respx.mock
def test_the_learner_is_named_by_the_moodle_field_configured(tmp_path: Path) -> None:
    fake = serve(FakeMoodle())
    found = enrich(record(), settings(tmp_path, moodle(person_field="idnumber")))
    assert found is not None and (found.match_person_id, found.match_course_id) == ("CV-57", None)
    assert ("core_user_get_users_by_field", {"field": "id", "values[0]": "57"}) in fake.asked


@respx.mock
def test_a_learner_without_that_field_is_an_unknown_person(tmp_path: Path) -> None:
    serve(FakeMoodle(core_user_get_users_by_field=[{**USERS[0], "idnumber": ""}]))
    with pytest.raises(Unresolved) as info:
        enrich(record(), settings(tmp_path, moodle(person_field="idnumber")))
    assert (info.value.reason, info.value.message) == (
        "unknown_person",
        "the Moodle user has no idnumber",
    )


@respx.mock
def test_the_course_is_named_by_the_moodle_field_configured(tmp_path: Path) -> None:
    fake = serve(FakeMoodle())
    found = enrich(record(), settings(tmp_path, moodle(course_field="shortname")))
    assert found is not None and (found.match_person_id, found.match_course_id) == (None, "VCA-B")
    assert ("core_course_get_courses_by_field", {"field": "id", "value": "12"}) in fake.asked


@respx.mock
def test_a_course_without_that_field_is_an_unknown_course(tmp_path: Path) -> None:
    serve(FakeMoodle())  # the course's idnumber is empty
    with pytest.raises(Unresolved) as info:
        enrich(record(), settings(tmp_path, moodle(course_field="idnumber")))
    assert (info.value.reason, info.value.message) == (
        "unknown_course",
        "the Moodle course has no idnumber",
    )


# -- aNewSpring --------------------------------------------------------------------------------


@respx.mock
def test_anewspring_grade_of_the_records_course_in_the_installations_format(
    tmp_path: Path,
) -> None:
    route = respx.get(f"{ASP}/api/getResults/57", params={"asStudent": "true"})
    route.respond(200, json=corpus("anewspring/getResults.json"))  # course 12: grade "7.85"
    found = enrich(
        record("anewspring", "academy"), settings(tmp_path, anewspring(decimal_separator=","))
    )
    assert found is not None and found.grade == "7,9"
    assert route.call_count == 1


@respx.mock
def test_anewspring_without_a_grade_yet_says_so_and_waits(tmp_path: Path) -> None:
    results = corpus("anewspring/getResults.json")
    results["courses"][0]["grade"] = ""
    respx.get(f"{ASP}/api/getResults/57", params={"asStudent": "true"}).respond(200, json=results)
    with pytest.raises(Unresolved) as info:
        enrich(record("anewspring", "academy"), settings(tmp_path, anewspring()))
    assert (info.value.reason, info.value.message) == (
        "grade_unavailable",
        "aNewSpring's result has no grade yet",
    )


# -- xAPI: a Moodle log store's learner, mapped by its Moodle installation ----------------------


@respx.mock
def test_an_xapi_learner_is_mapped_by_the_named_moodles_field(tmp_path: Path) -> None:
    fake = serve(FakeMoodle())
    s = settings(tmp_path, moodle(person_field="idnumber"), xapi())
    found = enrich(record("xapi", "lrs", NEEDS_MOODLE_PERSON), s)
    assert found is not None and found.match_person_id == "CV-57"
    assert found.note == "xapi/lrs: learner mapped by moodle/campus's idnumber"
    assert fake.asked == [("core_user_get_users_by_field", {"field": "id", "values[0]": "57"})]


@respx.mock
def test_an_xapi_learner_unknown_to_the_named_moodle_is_an_unknown_person(
    tmp_path: Path,
) -> None:
    serve(FakeMoodle(core_user_get_users_by_field=[]))  # no such user
    s = settings(tmp_path, moodle(person_field="idnumber"), xapi())
    with pytest.raises(Unresolved) as info:
        enrich(record("xapi", "lrs", NEEDS_MOODLE_PERSON), s)
    assert (info.value.reason, info.value.message) == (
        "unknown_person",
        "the Moodle user has no idnumber",
    )


def test_an_xapi_learner_named_by_moodles_own_id_is_taken_as_sent(tmp_path: Path) -> None:
    s = settings(tmp_path, moodle(), xapi())
    found = enrich(record("xapi", "lrs", NEEDS_MOODLE_PERSON), s)
    assert found is not None and found.match_person_id is None
    assert found.note == "xapi/lrs: learner by moodle/campus's user id, as sent"


# -- an installation no longer in the sources ---------------------------------------------------


def test_a_record_of_an_installation_gone_from_the_sources_fails_naming_it(
    tmp_path: Path,
) -> None:
    with pytest.raises(Permanent) as info:
        enrich(record(instance="gone"), settings(tmp_path, moodle()))
    assert info.value.code == "unknown_installation"
    assert info.value.message == "no moodle installation named 'gone' in the sources"
