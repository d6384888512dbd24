"""The xAPI Statement endpoint (issue 24) without real processes: the specification's own
rules (gradesync/xapi_spec.py), the reading per installation (gradesync/xapi_read.py), the
conformance corpus through the reader, and the HTTP answers (fakeredis)."""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from gradesync import xapi_read, xapi_spec
from gradesync.ledger import Ledger
from gradesync.record import Record
from gradesync.settings import Settings
from gradesync.sources import Sources, XapiSource
from producers.api import create_app
from tests.conformance.corpus import PASSWORDS, cases, entry, password_env

NOW = datetime.now(UTC).replace(microsecond=0)
STAMP = (NOW - timedelta(hours=1)).isoformat()
COURSE = "https://moodle.example.nl/course/view.php?id=12"
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
PASSED = "http://adlnet.gov/expapi/verbs/passed"
FAILED = "http://adlnet.gov/expapi/verbs/failed"
VOIDED = "http://adlnet.gov/expapi/verbs/voided"
VERSION = {"X-Experience-API-Version": "1.0.3"}


def installation(name: str = "moodle", **more: Any) -> XapiSource:
    env = {password_env(n): p for n, p in PASSWORDS.items()}
    sources = Sources.parse({"installations": [{**entry(name), **more}]}, env)
    return sources.typed(XapiSource, name)


def statement(verb: str = COMPLETED, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "actor": {"account": {"homePage": "https://moodle.example.nl", "name": "57"}},
        "verb": {"id": verb},
        "object": {"id": COURSE, "objectType": "Activity"},
        "timestamp": STAMP,
    }
    out.update(more)
    return out


def read(data: dict[str, Any], inst: XapiSource | None = None) -> xapi_read.Reading:
    (sid, checked), *_ = xapi_spec.check_batch(data)
    return xapi_read.read(checked, sid, inst or installation(), NOW)


# -- what xAPI itself calls invalid: 400, naming the index and the field --------------------------


AGENT_IFIS = "mbox, mbox_sha1sum, openid, account"
SCORE = "statements[1].result.score"


# The message is what the sender reads in the 400 (``detail``), beside the field.
@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"id": "not-a-uuid"}, "statements[1].id", "must be a UUID"),
        # 36 characters uuid.UUID() reads, but not the standard string form (xAPI-Data.md 2.4.1):
        # a voiding statement naming it so would miss the statement it voids.
        ({"id": "----e05aa883acaf40adbf5402c8ce485fb0"}, "statements[1].id", "must be a UUID"),
        ({"id": "{e05aa883acaf40adbf5402c8ce485fb0}--"}, "statements[1].id", "must be a UUID"),
        (
            {"actor": {"name": "no identifier"}},
            "statements[1].actor",
            f"an Agent has exactly one of {AGENT_IFIS}",
        ),
        (
            {"actor": {"mbox": "mailto:a@b.nl", "openid": "https://id.example.nl/a"}},
            "statements[1].actor",
            f"an Agent has exactly one of {AGENT_IFIS}",
        ),
        ({"actor": "anna"}, "statements[1].actor", "must be a JSON object"),
        ({"actor": None}, "statements[1].actor", "is required"),
        (
            {"actor": {"objectType": "Person", "mbox": "mailto:a@b.nl"}},
            "statements[1].actor.objectType",
            "must be Agent or Group",
        ),
        (
            {"actor": {"objectType": "Group", "mbox": "mailto:a@b.nl", "openid": "https://g"}},
            "statements[1].actor",
            f"a Group has at most one of {AGENT_IFIS}",
        ),
        (
            {"actor": {"objectType": "Group", "name": "nobody"}},
            "statements[1].actor.member",
            "an anonymous Group lists its members",
        ),
        (
            {"actor": {"objectType": "Group", "member": [{"mbox": "a@b.nl"}]}},
            "statements[1].actor.member[0].mbox",
            'must be a "mailto:" IRI',
        ),
        (
            {"actor": {"mbox": "anna@example.nl"}},
            "statements[1].actor.mbox",
            'must be a "mailto:" IRI',
        ),
        ({"actor": {"mbox": 7}}, "statements[1].actor.mbox", 'must be a "mailto:" IRI'),
        ({"actor": {"openid": "anna"}}, "statements[1].actor.openid", "must be a URI"),
        ({"actor": {"account": "57"}}, "statements[1].actor.account", "must be a JSON object"),
        (
            {"actor": {"account": {"homePage": "https://moodle.example.nl"}}},
            "statements[1].actor.account.name",
            "is required (a string)",
        ),
        (
            {"actor": {"account": {"name": "57"}}},
            "statements[1].actor.account.homePage",
            "is required (a string)",
        ),
        ({"verb": None}, "statements[1].verb", "is required"),
        ({"verb": "completed"}, "statements[1].verb", "must be a JSON object"),
        (
            {"verb": {"display": {"en": "completed"}}},
            "statements[1].verb.id",
            "is required (an IRI)",
        ),
        ({"verb": {"id": "completed"}}, "statements[1].verb.id", "is required (an IRI)"),
        ({"verb": {"id": "http://x.nl/a verb"}}, "statements[1].verb.id", "is required (an IRI)"),
        ({"verb": {"id": ["http://x.nl/v"]}}, "statements[1].verb.id", "is required (an IRI)"),
        ({"object": None}, "statements[1].object", "is required"),
        (
            {"object": {"objectType": "Course", "id": COURSE}},
            "statements[1].object.objectType",
            "must be one of Activity, Agent, Group, StatementRef, SubStatement",
        ),
        ({"object": {"definition": {}}}, "statements[1].object.id", "is required (an IRI)"),
        (
            {"object": {"objectType": "StatementRef", "id": "12"}},
            "statements[1].object.id",
            "must be a UUID (the statement referred to)",
        ),
        ({"result": "passed"}, "statements[1].result", "must be a JSON object"),
        ({"result": {"success": "yes"}}, "statements[1].result.success", "must be true or false"),
        ({"result": {"completion": 1}}, "statements[1].result.completion", "must be true or false"),
        ({"result": {"score": 80}}, SCORE, "must be a JSON object"),
        ({"result": {"score": {"scaled": "0.8"}}}, f"{SCORE}.scaled", "must be a number"),
        ({"result": {"score": {"raw": True}}}, f"{SCORE}.raw", "must be a number"),
        ({"result": {"score": {"scaled": 1.5}}}, f"{SCORE}.scaled", "must lie between -1 and 1"),
        ({"result": {"score": {"scaled": -1.5}}}, f"{SCORE}.scaled", "must lie between -1 and 1"),
        (
            {"result": {"score": {"raw": 120, "min": 0, "max": 100}}},
            f"{SCORE}.raw",
            "must not be more than max",
        ),
        (
            {"result": {"score": {"raw": 101, "max": 100}}},
            f"{SCORE}.raw",
            "must not be more than max",
        ),
        ({"result": {"score": {"raw": 5, "min": 10}}}, f"{SCORE}.raw", "must not be less than min"),
        ({"result": {"score": {"min": 10, "max": 10}}}, f"{SCORE}.min", "must be less than max"),
        ({"timestamp": "20 November"}, "statements[1].timestamp", "must be an ISO 8601 timestamp"),
        ({"timestamp": 1700000000}, "statements[1].timestamp", "must be an ISO 8601 timestamp"),
        ({"context": "course 12"}, "statements[1].context", "must be a JSON object"),
        (
            {"context": {"registration": "r-1"}},
            "statements[1].context.registration",
            "must be a UUID",
        ),
        ({"version": "2.0.0"}, "statements[1].version", "must be 1.0.x"),
        ({"version": 1.0}, "statements[1].version", "must be 1.0.x"),
        ({"grade": "9"}, "statements[1].grade", "is not a Statement property"),
        (
            {"verb": {"id": VOIDED}},
            "statements[1].object.objectType",
            "a voiding statement's object is a StatementRef",
        ),
    ],
)
def test_invalid_statements_are_named_by_index_and_field(
    change: dict[str, Any], field: str, message: str
) -> None:
    bad = {k: v for k, v in {**statement(), **change}.items() if v is not None}
    with pytest.raises(xapi_spec.Invalid) as caught:
        xapi_spec.check_batch([statement(), bad])
    assert (caught.value.field, caught.value.message) == (field, message)
    assert str(caught.value) == f"{field}: {message}"


@pytest.mark.parametrize(
    "change",
    [
        {"result": {"score": {"scaled": -1}, "success": True, "completion": True}},
        {"result": {"score": {"scaled": 1}}},
        {"result": {"score": {"raw": 10, "min": 10, "max": 20}}},
        {"result": {"score": {"raw": 20, "min": 10, "max": 20}}},
        {"result": {"score": {"min": 0, "max": 100}}},
        {"version": "1.0.3", "context": {"registration": "e05aa883-acaf-40ad-bf54-02c8ce485fb0"}},
        {"actor": {"objectType": "Group", "account": {"homePage": "https://m.nl", "name": "g"}}},
        {"actor": {"objectType": "Group", "member": [{"openid": "https://id.example.nl/a"}]}},
        {"object": {"objectType": "Agent", "mbox": "mailto:a@b.nl"}},
    ],
)
def test_what_xapi_allows_is_valid(change: dict[str, Any]) -> None:
    """The bounds themselves are valid (xAPI-Data.md 2.4.5.1: ``scaled`` in -1..1 inclusive,
    ``raw`` between ``min`` and ``max`` inclusive), as are optional properties sent as null."""
    data = {**statement(), **change}
    assert xapi_spec.check_batch(data) == [(xapi_spec.statement_id(data), data)]


def test_what_is_neither_a_statement_nor_an_array_is_named_as_the_body() -> None:
    with pytest.raises(xapi_spec.Invalid) as caught:
        xapi_spec.check_batch("statements")
    assert (caught.value.field, caught.value.message) == (
        "(body)",
        "must be a Statement or an array of Statements",
    )


def test_a_single_statement_is_named_statement_not_by_index() -> None:
    with pytest.raises(xapi_spec.Invalid) as caught:
        xapi_spec.check_batch({**statement(), "id": "12"})
    assert caught.value.field == "statement.id"


def test_ids_given_are_kept_and_missing_ones_derived_from_the_content() -> None:
    given = "E05AA883-ACAF-40AD-BF54-02C8CE485FB0"
    ((sid, _),) = xapi_spec.check_batch({**statement(), "id": given})
    assert sid == given.lower()
    first = xapi_spec.check_batch([statement()])[0][0]
    assert first == xapi_spec.check_batch([statement()])[0][0]  # a resend: the same id
    other = xapi_spec.check_batch([statement(timestamp=NOW.isoformat())])[0][0]
    assert other != first and xapi_spec.is_uuid(first)


def test_the_same_given_id_twice_in_a_batch_is_invalid_the_same_content_twice_is_not() -> None:
    twice = {**statement(), "id": "e05aa883-acaf-40ad-bf54-02c8ce485fb0"}
    with pytest.raises(xapi_spec.Invalid) as caught:
        xapi_spec.check_batch([twice, {**twice, "verb": {"id": PASSED}}])
    assert (caught.value.field, caught.value.message) == (
        "statements[1].id",
        "repeats the id of statements[0]",
    )
    assert len(xapi_spec.check_batch([statement(), statement()])) == 2


# -- what counts, who, what, when ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "style", "grade"),
    [
        ({"scaled": 0.85}, "dutch", "8.7"),
        ({"scaled": -0.2}, "dutch", "1.0"),
        ({"raw": 60, "min": 20, "max": 100}, "dutch", "5.5"),
        ({"raw": 60, "min": 20, "max": 100}, "percent", "50.0"),
        ({"raw": 60, "min": 20, "max": 100}, "raw", "60"),
        ({"raw": 8}, "dutch", None),  # no range: no grade, never a raw number taken for one
        ({"raw": 8, "max": 10}, "dutch", None),
    ],
)
def test_the_grade_comes_from_scaled_else_raw_on_its_range(
    score: dict[str, Any], style: str, grade: str | None
) -> None:
    done = read(statement(result={"score": score}), installation(grade_format=style))
    assert isinstance(done, xapi_read.Counted) and done.event.grade == grade


def test_completion_only_takes_no_grade() -> None:
    done = read(
        statement(result={"score": {"scaled": 0.9}}), installation(grade_policy="completion_only")
    )
    assert isinstance(done, xapi_read.Counted) and done.event.grade is None


@pytest.mark.parametrize(
    "data",
    [
        statement(FAILED, result={"score": {"scaled": 0.4}, "success": False}),
        statement(COMPLETED, result={"success": False, "completion": True}),
        statement(PASSED, result={"success": False}),
    ],
)
def test_failed_or_success_false_is_not_passed(data: dict[str, Any]) -> None:
    done = read(data)
    # The ledger records where the time came from, for a learner who did not pass too.
    assert isinstance(done, xapi_read.NotPassed) and done.completed_at_source == "event"


def test_a_counted_statement_names_its_verb() -> None:
    """The endpoint tells a cmi5 ``passed`` (which carries the grade) from a ``completed``."""
    for verb in (COMPLETED, PASSED):
        done = read(statement(verb))
        assert isinstance(done, xapi_read.Counted) and done.verb == verb


NO_MATCH = "object.id does not match the course pattern"
HOME = "https://moodle.example.nl"
# An operator's pattern that backtracks without end on a long run of "a" (the attack trial's).
SLOW_PATTERN = r"(?P<course>.*a.*a.*a.*a.*b)"


# The detail is what the webhook route answers (``ignored``) and the operator reads.
@pytest.mark.parametrize(
    ("data", "inst", "reason", "detail"),
    [
        (
            statement("http://adlnet.gov/expapi/verbs/attempted"),
            {},
            "verb_not_counted",
            "the verb is not one this installation counts",
        ),
        (
            statement(object={"id": "https://moodle.example.nl/mod/quiz/view.php?id=9"}),
            {},
            "not_a_course",
            NO_MATCH,
        ),
        (
            statement(object={"id": "https://moodle.example.nl/course/view.php?id=12&x=1"}),
            {},
            "not_a_course",
            NO_MATCH,
        ),
        # The pattern matches, but its course group is empty: no course id.
        (
            statement(object={"id": "https://moodle.example.nl/course/view.php?id="}),
            {"course_pattern": r"course/view\.php\?id=(?P<course>\d*)"},
            "not_a_course",
            NO_MATCH,
        ),
        (
            statement(object={"id": "https://m/course/view.php?id=" + "1" * 3000}),
            {},
            "object_id_too_long",
            "object.id is over 2048 characters",
        ),
        (
            statement(object={"id": "https://lms.example.nl/" + "a" * 500}),
            {"course_pattern": SLOW_PATTERN},
            "course_pattern_too_slow",
            "the course pattern took over 0.5 s on object.id",
        ),
        (
            statement(object={"objectType": "Agent", "mbox": "mailto:a@b.nl"}),
            {},
            "object_not_activity",
            "the object is not an Activity",
        ),
        (
            statement(
                object={
                    "id": COURSE,
                    "definition": {"type": "https://w3id.org/xapi/cmi5/activitytype/block"},
                }
            ),
            {},
            "cmi5_block",
            "a cmi5 Block is not a course",
        ),
        (
            statement(actor={"objectType": "Group", "member": [{"mbox": "mailto:a@b.nl"}]}),
            {},
            "group_actor",
            "a Group is not a learner",
        ),
        (
            statement(actor={"mbox": "mailto:a@b.nl"}),
            {},
            "no_learner_id",
            "the actor has no account",
        ),
        (statement(), {"actor_id": "mbox"}, "no_learner_id", "the actor has no mbox"),
        (
            statement(),
            {"account_homepage": "https://other.example.nl/"},
            "other_homepage",
            "the account is of another homePage",
        ),
        # Only a trailing slash is no difference: a path one segment deeper is another site.
        (
            statement(actor={"account": {"homePage": HOME + "/X", "name": "57"}}),
            {"account_homepage": HOME},
            "other_homepage",
            "the account is of another homePage",
        ),
        (
            statement(),
            {"account_homepage": HOME + "/X"},
            "other_homepage",
            "the account is of another homePage",
        ),
        (
            statement(timestamp="1999-12-31T23:00:00Z"),
            {},
            "unusable_value",
            "completed_at: must lie between 2000-01-01 and a day from now",
        ),
    ],
)
def test_what_is_not_a_usable_completion_is_skipped_with_a_reason(
    data: dict[str, Any], inst: dict[str, Any], reason: str, detail: str
) -> None:
    done = read(data, installation(**inst))
    assert done == xapi_read.Skipped(reason, detail)  # type: ignore[arg-type]


def test_an_object_id_at_the_length_cap_is_read() -> None:
    """The cap is on what is longer than 2048 characters; a long query string up to it is read."""
    head = "https://moodle.example.nl/course/view.php?id=12&back="
    at_cap = head + "x" * (xapi_read.MAX_OBJECT_ID - len(head))
    done = read(
        statement(object={"id": at_cap}), installation(course_pattern=r"[?&]id=(?P<course>\d+)")
    )
    assert isinstance(done, xapi_read.Counted) and done.event.course_id == "12"


def test_an_object_id_one_character_over_the_cap_is_skipped() -> None:
    """The cap's other side: 2049 characters are refused, not only far longer ids (a cap
    moved by one, ``> MAX_OBJECT_ID + 1``, passed every other test)."""
    head = "https://moodle.example.nl/course/view.php?id=12&back="
    over = head + "x" * (xapi_read.MAX_OBJECT_ID + 1 - len(head))
    done = read(
        statement(object={"id": over}), installation(course_pattern=r"[?&]id=(?P<course>\d+)")
    )
    assert done == xapi_read.Skipped("object_id_too_long", "object.id is over 2048 characters")


def test_a_slow_course_pattern_lets_other_threads_run() -> None:
    """The ingress reads statements on worker threads: a runaway pattern must not hold the GIL
    (``concurrent``), or every other request waits for its timeout."""
    inst = installation(course_pattern=SLOW_PATTERN)
    target = {"id": "https://lms.example.nl/" + "a" * 500}
    worker = threading.Thread(target=xapi_read.course, args=(target, inst))
    worker.start()
    turns = 0
    while worker.is_alive():
        time.sleep(0.005)
        turns += 1
    # Measured: about 140 turns while the pattern runs without the GIL, 1 while it holds it.
    assert turns >= 10


def test_the_registration_is_read_in_lower_case() -> None:
    """A UUID's case is no part of it (RFC 4122 3): a cmi5 LMS's passed and completed of one
    registration meet under one key, in the case every earlier version stored."""
    reg = "EC531277-B57B-4C15-8D91-D292C5B2B8F7"
    done = read(statement(context={"registration": reg}))
    assert isinstance(done, xapi_read.Counted) and done.registration == reg.lower()
    bare = read(statement())
    assert isinstance(bare, xapi_read.Counted) and bare.registration is None


def test_the_learner_by_account_mbox_or_openid_and_the_homepage_check() -> None:
    assert isinstance(done := read(statement()), xapi_read.Counted)
    assert (done.event.person_id, done.event.course_id) == ("57", "12")
    # A trailing slash on either side is no other homePage.
    ok = read(statement(), installation(account_homepage="https://moodle.example.nl/"))
    assert isinstance(ok, xapi_read.Counted)
    slashed = statement(actor={"account": {"homePage": "https://moodle.example.nl/", "name": "57"}})
    ok = read(slashed, installation(account_homepage="https://moodle.example.nl"))
    assert isinstance(ok, xapi_read.Counted)
    by_mail = read(
        statement(actor={"mbox": "mailto:anna@example.nl"}), installation(actor_id="mbox")
    )
    assert isinstance(by_mail, xapi_read.Counted) and by_mail.event.person_id == "anna@example.nl"
    by_openid = read(
        statement(actor={"openid": "https://id.example.nl/anna"}), installation(actor_id="openid")
    )
    assert isinstance(by_openid, xapi_read.Counted)
    assert by_openid.event.person_id == "https://id.example.nl/anna"
    # Only an mbox loses its "mailto:": an OpenID is the learner's id as written, any scheme.
    mailto_openid = read(
        statement(actor={"openid": "mailto:anna@example.nl"}), installation(actor_id="openid")
    )
    assert isinstance(mailto_openid, xapi_read.Counted)
    assert mailto_openid.event.person_id == "mailto:anna@example.nl"


def test_a_missing_timestamp_is_the_arrival_and_a_zoneless_one_utc() -> None:
    data = statement()
    del data["timestamp"]
    done = read(data)
    assert isinstance(done, xapi_read.Counted)
    assert (done.event.completed_at, done.completed_at_source) == (NOW, "arrival")
    # A null timestamp is taken as none: the statement still gets its derived id.
    done = read(statement(timestamp=None))
    assert isinstance(done, xapi_read.Counted)
    assert (done.event.completed_at, done.completed_at_source) == (NOW, "arrival")
    naive = (NOW - timedelta(hours=2)).replace(tzinfo=None).isoformat()
    done = read(statement(timestamp=naive))
    assert isinstance(done, xapi_read.Counted) and done.completed_at_source == "utc_assumed"
    assert done.event.completed_at == NOW - timedelta(hours=2)


def test_a_voiding_names_its_target() -> None:
    target = "E05AA883-ACAF-40AD-BF54-02C8CE485FB0"
    done = read(statement(VOIDED, object={"objectType": "StatementRef", "id": target}))
    assert done == xapi_read.Voiding(target=target.lower())


# -- the corpus, through the reader ----------------------------------------------------------


@pytest.mark.parametrize(("name", "case"), cases())
def test_corpus_through_the_reader(name: str, case: dict[str, Any]) -> None:
    assert case["source"]["repository"] and case["source"]["path"], name
    inst = installation(case["installation"])
    batch = xapi_spec.check_batch(case["statements"])
    arrival = NOW
    for (sid, data), want in zip(batch, case["expect"], strict=True):
        done = xapi_read.read(data, sid, inst, arrival)
        assert (
            type(done).__name__
            == {
                "counted": "Counted",
                "not_passed": "NotPassed",
                "voiding": "Voiding",
                "ignored": "Skipped",
            }[want["outcome"]]
        ), (name, done)
        if isinstance(done, xapi_read.Skipped):
            assert done.reason == want["reason"], name
        elif isinstance(done, xapi_read.Voiding):
            assert done.target == want["target"]
        else:
            event = done.event
            assert (event.person_id, event.course_id) == (want["person_id"], want["course_id"])
            via = want.get("grade_via")  # the endpoint's doing (a registration's passed)
            assert event.grade == (None if via else want["grade"]), name
            if "completed_at" in want:
                assert event.completed_at == datetime.fromisoformat(want["completed_at"])
            if "completed_at_source" in want:
                assert done.completed_at_source == want["completed_at_source"]


# -- over HTTP (fakeredis) ---------------------------------------------------------------------


class Endpoint:
    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
        for name, password in PASSWORDS.items():
            monkeypatch.setenv(password_env(name), password)
        path = tmp / "sources.yaml"
        path.write_text(
            yaml.safe_dump({"installations": [entry(n) for n in ("moodle", "cmi5", "spec")]})
        )
        self.sent: list[str] = []
        self.ledger = Ledger(fakeredis.FakeRedis())
        s = Settings(
            GRADESYNC_SOURCES=str(path),
            GRADESYNC_INSECURE_DEV="0",
            **env,  # type: ignore[arg-type]
        )
        self.client = TestClient(create_app(self.ledger, self.sent.append, s))

    def post(self, body: Any, instance: str = "moodle", **headers: str) -> Any:
        return self.client.post(
            f"/xapi/{instance}/statements",
            content=json.dumps(body).encode(),
            headers={**auth(instance), **VERSION, "content-type": "application/json", **headers},
        )

    def records(self) -> list[Record]:
        return [r for r in self.ledger.newest(limit=100) if isinstance(r, Record)]


def auth(instance: str, password: str | None = None) -> dict[str, str]:
    raw = f"{instance}-sender:{password or PASSWORDS[instance]}".encode()
    return {"authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.fixture
def xapi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Endpoint:
    return Endpoint(tmp_path, monkeypatch)


def test_a_log_store_batch_is_200_with_the_ids_and_a_resend_adds_nothing(xapi: Endpoint) -> None:
    batch = [statement(), statement(object={"id": "https://m.nl/mod/book/view.php?id=1"})]
    first = xapi.post(batch)
    assert first.status_code == 200, first.text
    assert first.headers["x-experience-api-version"] == "1.0.3"
    ids = first.json()
    assert len(ids) == 2 and all(xapi_spec.is_uuid(i) for i in ids)
    assert len(xapi.records()) == 1 and len(xapi.sent) == 1
    again = xapi.post(batch)
    assert (again.status_code, again.json()) == (200, ids)
    assert len(xapi.records()) == 1 and len(xapi.sent) == 1  # nothing new
    # The default installation's route is /xapi/statements: none is configured here.
    assert xapi.client.post("/xapi/statements", headers=VERSION).status_code == 404


def test_the_same_id_with_other_content_is_409_and_records_nothing(xapi: Endpoint) -> None:
    sid = "e05aa883-acaf-40ad-bf54-02c8ce485fb0"
    assert xapi.post({**statement(), "id": sid}).status_code == 200
    other = xapi.post([statement(PASSED), {**statement(), "id": sid, "timestamp": NOW.isoformat()}])
    assert other.status_code == 409 and other.json()["detail"][0]["field"] == "statements[1].id"
    assert len(xapi.records()) == 1


def test_an_invalid_statement_refuses_the_whole_batch(xapi: Endpoint) -> None:
    response = xapi.post([statement(), {**statement(), "result": {"success": "yes"}}])
    assert response.status_code == 400
    assert response.json()["detail"] == [
        {"field": "statements[1].result.success", "message": "must be true or false"}
    ]
    assert xapi.records() == [] and xapi.sent == []


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({"authorization": ""}, 401, "unauthenticated"),
        (auth("moodle", "wrong"), 401, "unauthenticated"),
        (auth("cmi5"), 401, "unauthenticated"),  # another installation's credentials
        ({"authorization": "Basic %%%"}, 401, "unauthenticated"),
        ({"X-Experience-API-Version": "0.95"}, 400, "version"),
        ({"X-Experience-API-Version": ""}, 400, "version"),
        ({"content-type": "text/plain"}, 415, "unsupported_media_type"),
    ],
)
def test_refusals_carry_the_version_header(
    xapi: Endpoint, headers: dict[str, str], status: int, error: str
) -> None:
    response = xapi.post([statement()], **headers)
    assert (response.status_code, response.json()["error"]) == (status, error)
    assert response.headers["x-experience-api-version"] == "1.0.3"
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic ")
    assert xapi.records() == []


def test_the_route_has_its_own_body_limit_checked_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = Endpoint(tmp_path, monkeypatch, GRADESYNC_XAPI_MAX_BODY_BYTES="2000")
    big = [statement() for _ in range(20)]
    assert small.post(big).status_code == 413
    # The default (1 MiB) takes a batch far larger than one webhook (64 KiB).
    roomy = Endpoint(tmp_path, monkeypatch)
    batch = [statement(timestamp=(NOW - timedelta(minutes=n)).isoformat()) for n in range(400)]
    assert len(json.dumps(batch)) > 64 * 1024
    assert roomy.post(batch).status_code == 200


def test_put_takes_one_statement_by_its_id(xapi: Endpoint) -> None:
    sid = "7ccd3322-e1a5-411a-a67d-6a735c76f119"
    headers = {**auth("moodle"), **VERSION, "content-type": "application/json"}
    put = xapi.client.put(
        f"/xapi/moodle/statements?statementId={sid}", json=statement(), headers=headers
    )
    assert put.status_code == 204 and put.headers["x-experience-api-version"] == "1.0.3"
    assert xapi.records()[0].event.event_id == f"xapi-{sid}"
    assert (
        xapi.client.put(
            f"/xapi/moodle/statements?statementId={sid}", json=statement(), headers=headers
        ).status_code
        == 204
    )
    mismatch = xapi.client.put(
        "/xapi/moodle/statements?statementId=e05aa883-acaf-40ad-bf54-02c8ce485fb0",
        json={**statement(), "id": sid},
        headers=headers,
    )
    assert mismatch.status_code == 400
    missing = xapi.client.put("/xapi/moodle/statements", json=statement(), headers=headers)
    assert missing.status_code == 400 and missing.json()["detail"][0]["field"] == "statementId"
    unknown = xapi.client.get("/xapi/moodle/nothing-here")
    assert unknown.status_code == 404 and unknown.headers["x-experience-api-version"] == "1.0.3"


def test_about_answers_the_version(xapi: Endpoint) -> None:
    about = xapi.client.get("/xapi/cmi5/about")
    assert about.json() == {"version": ["1.0.3"]}
    assert about.headers["x-experience-api-version"] == "1.0.3"
    assert xapi.client.get("/xapi/nowhere/about").status_code == 404


def test_not_passed_writes_nothing_and_a_later_pass_proceeds(xapi: Endpoint) -> None:
    assert xapi.post([statement(FAILED, result={"success": False})]).status_code == 200
    (rec,) = xapi.records()
    assert rec.state == "not_passed" and xapi.sent == []
    assert xapi.post([statement(PASSED, result={"success": True})]).status_code == 200
    (rec,) = xapi.records()
    assert rec.state == "queued" and xapi.sent == [rec.id]
    # A fail after the pass never undoes it.
    xapi.post([statement(FAILED, timestamp=NOW.isoformat(), result={"success": False})])
    assert xapi.records()[0].state == "queued"


def test_voiding_withdraws_what_is_not_delivered_and_flags_what_is(xapi: Endpoint) -> None:
    sid = "e05aa883-acaf-40ad-bf54-02c8ce485fb0"
    xapi.post([{**statement(), "id": sid}])
    void = statement(VOIDED, object={"objectType": "StatementRef", "id": sid})
    assert xapi.post([void]).status_code == 200
    (rec,) = xapi.records()
    assert rec.state == "withdrawn"
    other = "e05aa883-acaf-40ad-bf54-02c8ce485fb1"
    xapi.post([{**statement(object={"id": COURSE.replace("12", "13")}), "id": other}])
    done = next(r for r in xapi.records() if r.event.course_id == "13")
    xapi.ledger.deliver(done.id, NOW)
    xapi.post([statement(VOIDED, object={"objectType": "StatementRef", "id": other})])
    flagged = xapi.ledger.get(done.id)
    assert flagged is not None and flagged.state == "delivered"
    assert flagged.outcome == {
        "code": "voided_after_delivery",
        "statement": xapi_spec.statement_id(
            statement(VOIDED, object={"objectType": "StatementRef", "id": other})
        ),
    }
    # Voiding what gradesync never took is answered 200 too (and counted).
    unknown = statement(VOIDED, object={"objectType": "StatementRef", "id": sid[:-1] + "9"})
    assert xapi.post([unknown]).status_code == 200


def test_cmi5_completed_takes_the_grade_of_its_registrations_passed(xapi: Endpoint) -> None:
    ((name, case),) = [c for c in cases() if c[0].startswith("cmi5-spec-9")]
    passed, completed, *_ = case["statements"]
    # completed first: delivered without a grade it would be; the passed then brings it.
    assert xapi.post([completed], instance="cmi5").status_code == 200
    (rec,) = xapi.records()
    assert rec.event.grade is None
    assert xapi.post([passed], instance="cmi5").status_code == 200
    (rec,) = xapi.records()
    assert rec.event.grade == "9.1", name
    # passed first: the completed after it brings the registration's grade itself, so none is
    # lost. Both graded at one instant: the smaller event id stands (gradesync/merge.py).
    other = [copy.deepcopy(passed), copy.deepcopy(completed)]
    for n, data in enumerate(other):
        data["id"] = data["id"][:-2] + f"f{n}"
        data["actor"]["account"]["name"] = "other-learner"
    assert xapi.post(other, instance="cmi5").status_code == 200
    rec = next(r for r in xapi.records() if r.event.person_id == "other-learner")
    assert rec.event.event_id == f"xapi-{other[0]['id']}" and rec.event.grade == "9.1"


def test_ignored_statements_are_counted_by_reason(xapi: Endpoint) -> None:
    def count(reason: str) -> float:
        labels = {"installation": "xapi/moodle", "outcome": "ignored", "reason": reason}
        return REGISTRY.get_sample_value("gradesync_xapi_statements_total", labels) or 0.0

    before = count("not_a_course")
    xapi.post([statement(object={"id": "https://m.nl/mod/quiz/view.php?id=3"})])
    assert count("not_a_course") == before + 1


# -- the sources file's xAPI entries -----------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"basic_auth": None}, "needs basic_auth"),
        ({"basic_auth": {"username": "u"}}, "password_env (preferred) or password"),
        ({"basic_auth": {"username": "a:b", "password": "p"}}, "pattern"),
        ({"course_pattern": "course/(\\d+)"}, "named group"),
        ({"course_pattern": "("}, "not a regular expression"),
        ({"verbs": [" "]}, "at least one verb"),
        ({"moodle": "nowhere"}, "names no Moodle installation"),
    ],
)
def test_xapi_entries_are_checked(change: dict[str, Any], problem: str) -> None:
    data = {**entry("moodle"), **change}
    if data.get("basic_auth") is None:
        data.pop("basic_auth")
    with pytest.raises(ValueError, match=re.escape(problem)):
        Sources.parse({"installations": [data]}, {password_env("moodle"): "x"})


def test_an_xapi_installation_may_have_basic_auth_only_and_map_through_moodle() -> None:
    moodle = {
        "kind": "moodle",
        "instance": "site",
        "secret": "a-moodle-hook-token-of-32-characters",
        "api": {"url": "https://moodle.example.nl", "credential": "ws"},
    }
    sources = Sources.parse(
        {"installations": [moodle, {**entry("moodle"), "moodle": "site"}]},
        {password_env("moodle"): "pw"},
    )
    inst = sources.typed(XapiSource, "moodle")
    assert inst.webhook_secret() is None and inst.basic_auth is not None
    assert inst.basic_auth.secret() == "pw" and "pw" not in repr(inst)


def test_a_forwarded_copy_is_the_same_statement_not_a_conflict(xapi: Endpoint) -> None:
    """xAPI-Data.md 2.3.1 (Statement Comparison): differences an LRS may cause are no conflict
    — the timestamp in another zone or precision, a Verb's display, an Activity's definition,
    contextActivities as arrays, Group members in another order, attachments, the case of an
    e-mail domain. A 409 there makes the forwarding LRS resend the statement for ever."""
    sid = "e05aa883-acaf-40ad-bf54-02c8ce485fb0"
    course = {"id": COURSE, "objectType": "Activity", "definition": {"name": {"en": "C"}}}
    parent = {"id": "https://moodle.example.nl/course/view.php?id=1", "objectType": "Activity"}
    original = {
        **statement(),
        "id": sid,
        "actor": {"mbox": "mailto:anna@Example.NL"},
        "verb": {"id": COMPLETED, "display": {"en-US": "completed"}},
        "object": course,
        "context": {
            "contextActivities": {"parent": parent},
            "team": {
                "objectType": "Group",
                "member": [{"mbox": "mailto:a@x.nl"}, {"mbox": "mailto:b@x.nl"}],
            },
        },
        "timestamp": (NOW - timedelta(hours=1)).isoformat(),
    }
    forwarded = {
        **original,
        "actor": {"mbox": "mailto:anna@example.nl", "objectType": "Agent"},
        "verb": {"id": COMPLETED},
        "object": {"id": COURSE, "objectType": "Activity"},
        "context": {
            "contextActivities": {"parent": [parent]},
            "team": {
                "objectType": "Group",
                "member": [{"mbox": "mailto:b@x.nl"}, {"mbox": "mailto:a@x.nl"}],
            },
        },
        "timestamp": (NOW - timedelta(hours=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "stored": NOW.isoformat(),
        "authority": {"mbox": "mailto:lrs@example.nl"},
        "version": "1.0.0",
    }
    assert xapi.post(original).status_code == 200
    again = xapi.post([forwarded])
    assert (again.status_code, again.json()) == (200, [sid]), again.text


def test_a_statement_voided_before_it_arrives_is_not_delivered(xapi: Endpoint) -> None:
    """xAPI-Data.md 2.3.2: a statement is voided when the LRS also holds a voiding statement for
    it, in whatever order they came (a batch with the voiding first, a forwarding LRS out of
    order). The completion must not reach Coachview."""
    sid = "e05aa883-acaf-40ad-bf54-02c8ce485fb7"
    voiding = {
        "actor": {"mbox": "mailto:admin@example.nl"},
        "verb": {"id": VOIDED},
        "object": {"objectType": "StatementRef", "id": sid.upper()},
    }
    assert xapi.post([voiding, {**statement(), "id": sid}]).status_code == 200
    later = "e05aa883-acaf-40ad-bf54-02c8ce485fb8"
    assert (
        xapi.post({**voiding, "object": {"objectType": "StatementRef", "id": later}}).status_code
        == 200
    )
    assert xapi.post({**statement(), "id": later}).status_code == 200
    assert xapi.records() == [] and xapi.sent == []


def test_a_statement_with_an_attachment_in_multipart_mixed_is_taken(xapi: Endpoint) -> None:
    """xAPI-Communication.md 1.5.2: statements with attachments come as multipart/mixed, the
    statements the first part (application/json), then the raw attachments. The attachments
    are nothing to Coachview, but a 415 makes the sender resend the request for ever."""
    attached = {
        **statement(),
        "attachments": [
            {
                "usageType": "http://adlnet.gov/expapi/attachments/signature",
                "display": {"en-US": "Signature"},
                "contentType": "text/plain",
                "length": 5,
                "sha2": "185f8db32271fe25f561a6fc938b2e264306ec304eda518007d1764826381969",
            }
        ],
    }
    body = (
        b"--abcABC0123'()+_,-./:=?\r\nContent-Type: application/json\r\n\r\n"
        + json.dumps([attached]).encode()
        + b"\r\n--abcABC0123'()+_,-./:=?\r\nContent-Type: text/plain\r\n"
        b"Content-Transfer-Encoding: binary\r\nX-Experience-API-Hash: "
        b"185f8db32271fe25f561a6fc938b2e264306ec304eda518007d1764826381969\r\n\r\nHello"
        b"\r\n--abcABC0123'()+_,-./:=?--\r\n"
    )
    content_type = 'multipart/mixed; boundary="abcABC0123\'()+_,-./:=?"'
    response = xapi.client.post(
        "/xapi/moodle/statements",
        content=body,
        headers={**auth("moodle"), **VERSION, "content-type": content_type},
    )
    assert response.status_code == 200, response.text
    assert len(xapi.records()) == 1
