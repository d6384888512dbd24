"""xAPI on the signed route (``/events/xapi…``, producers/xapi.py): the conformance corpus's
statements one at a time. A completion is recorded under the statement's id; what only the
Statement endpoint understands (a learner who did not pass, a voiding) is left, saying where to
send it; anything else is left with the reader's reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gradesync import xapi_spec
from gradesync.parsed import NEEDS_MOODLE_PERSON, Completion, Ignored
from producers import xapi
from tests.conformance.corpus import cases
from tests.unit.test_xapi_statements import STAMP, installation, statement

ENDPOINT = "send it to the Statement endpoint (/xapi/…/statements)"
LEFT = {
    "not_passed": f"a learner who did not pass: {ENDPOINT}",
    "voiding": f"a voiding: {ENDPOINT}",
}


@pytest.mark.parametrize(("name", "case"), cases())
def test_corpus_through_the_signed_route(name: str, case: dict[str, Any]) -> None:
    inst = installation(case["installation"])
    for data, want in zip(case["statements"], case["expect"], strict=True):
        (done,) = xapi.parse(data, inst)
        if want["outcome"] == "counted":
            assert isinstance(done, Completion), (name, done)
            event = done.event
            assert (event.person_id, event.course_id) == (want["person_id"], want["course_id"])
            assert event.grade == (None if want.get("grade_via") else want["grade"]), name
            assert event.id == f"xapi-{xapi_spec.statement_id(data)}"
            assert done.needs == ()  # no Moodle installation named to look the learner up in
        else:
            assert isinstance(done, Ignored), (name, done)
            if want["outcome"] in LEFT:
                assert done.reason == LEFT[want["outcome"]], name
            else:  # the reader's reason, then its detail
                assert done.reason.startswith(f"{want['reason']}: "), (name, done.reason)


def completion(data: dict[str, Any], **more: Any) -> Completion:
    (done,) = xapi.parse(data, installation().model_copy(update=more))
    assert isinstance(done, Completion), done
    return done


def test_a_completion_is_named_by_the_statements_own_id_else_by_its_content() -> None:
    given = "E05AA883-ACAF-40AD-BF54-02C8CE485FB0"
    assert completion(statement(id=given)).event.id == f"xapi-{given.lower()}"
    one, again = completion(statement()).event.id, completion(statement()).event.id
    other = completion(statement(timestamp=datetime.now(UTC).isoformat())).event.id
    assert one == again != other


def test_a_statement_without_a_timestamp_completes_when_it_arrives() -> None:
    data = statement()
    del data["timestamp"]
    before = datetime.now(UTC)
    at = completion(data).event.completed_at
    assert before <= at <= datetime.now(UTC)
    assert completion(statement()).event.completed_at == datetime.fromisoformat(STAMP)


def test_an_installation_linked_to_moodle_has_the_learner_looked_up_there() -> None:
    assert completion(statement(), moodle="default").needs == (NEEDS_MOODLE_PERSON,)
    assert completion(statement()).needs == ()


def test_an_invalid_statement_names_the_field_from_the_statement() -> None:
    data = statement()
    del data["verb"]["id"]
    with pytest.raises(xapi_spec.Invalid) as invalid:
        xapi.parse(data, installation())
    assert invalid.value.field == "statement.verb.id"
