"""Grades are never silently lost (issue 10 item 4) and Moodle's own completion instant is kept
(issue 18): start-up refusal, enrichment outcomes, the ledger's rules, ``gradesync show``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import respx
from typer.testing import CliRunner

from gradesync import cli
from gradesync.cli import common
from gradesync.completion_time import CompletionInstant
from gradesync.errors import Permanent, Unresolved
from gradesync.event import CompletionEvent
from gradesync.ledger import Ledger
from gradesync.lms.enrich import enrich
from gradesync.parsed import NEEDS_GRADE
from gradesync.record import Record
from gradesync.settings import ConfigurationError, Settings, require_lms_apis

FIXTURES = Path(__file__).parent.parent / "fixtures"
MOODLE = "https://moodle.test"
ASP = "https://asp.test"
T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
NO_LMS_API = {"MOODLE_URL": None, "MOODLE_TOKEN": None, "ANEWSPRING_URL": None}


def settings(**overrides: Any) -> Settings:
    env: dict[str, Any] = {
        "MOODLE_URL": MOODLE,
        "MOODLE_TOKEN": "t",
        "ANEWSPRING_URL": ASP,
        "ANEWSPRING_API_KEY": "k",
        "GRADESYNC_INSECURE_DEV": "0",
        "MOODLE_PERSON_FIELD": "id",  # the grade policy alone (identity: test_identity.py)
        **overrides,
    }
    return Settings(**env)


# -- (a) a source whose grade must be fetched refuses to start without the means -------------


@pytest.mark.parametrize(
    ("overrides", "refused"),
    [
        ({}, []),
        (NO_LMS_API, ["MOODLE_URL", "ANEWSPRING_URL"]),
        ({"MOODLE_TOKEN": None}, ["MOODLE_TOKEN"]),
        ({**NO_LMS_API, "MOODLE_GRADE_POLICY": "completion_only"}, ["ANEWSPRING_URL"]),
        ({**NO_LMS_API, "ANEWSPRING_GRADE_POLICY": "event"}, ["MOODLE_URL"]),
        (
            {
                **NO_LMS_API,
                "MOODLE_GRADE_POLICY": "completion_only",
                "ANEWSPRING_GRADE_POLICY": "completion_only",
            },
            [],
        ),
        # a source without a webhook secret is not in use (its webhooks are refused)
        ({**NO_LMS_API, "GRADESYNC_WEBHOOK_SECRET_ANEWSPRING": None}, ["MOODLE_URL"]),
    ],
)
def test_a_source_in_use_that_would_lose_grades_refuses_to_start(
    overrides: dict[str, Any], refused: list[str]
) -> None:
    s = settings(**overrides)
    if not refused:
        assert require_lms_apis(s) == []
        return
    with pytest.raises(ConfigurationError) as info:
        require_lms_apis(s)
    for variable in refused:
        assert variable in str(info.value)


def test_insecure_dev_starts_and_says_what_is_missing() -> None:
    gaps = require_lms_apis(settings(**NO_LMS_API, GRADESYNC_INSECURE_DEV="1"))
    assert len(gaps) == 2 and "MOODLE_URL" in gaps[0] and "ANEWSPRING_URL" in gaps[1]


def test_an_unknown_grade_policy_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="MOODLE_GRADE_POLICY"):
        settings(MOODLE_GRADE_POLICY="event")  # a Moodle event never carries a grade


def test_the_ingress_refuses_to_start_and_the_cli_says_why() -> None:
    from producers.api import create_app

    with pytest.raises(ConfigurationError, match="MOODLE_URL"):
        create_app(Ledger(fakeredis.FakeRedis()), lambda _: None, settings(**NO_LMS_API))


# -- enrichment: what happens to a completion whose grade must be fetched -----------------------


def record(source: str = "moodle", **event: Any) -> Record:
    data = {
        "source": source,
        "person_id": "57",
        "course_id": "12",
        "completed_at": "2026-11-20T00:20:00+01:00",
        **event,
    }
    return Record(
        event=CompletionEvent.model_validate(data),
        state="in_progress",
        first_seen=T0,
        updated=T0,
        needs=[NEEDS_GRADE],
    )


def moodle_answers(grade_item: dict[str, Any] | None, status: dict[str, Any]) -> respx.Route:
    def answer(request: Any) -> Any:
        import httpx

        fn = dict(httpx.QueryParams(request.content.decode()))["wsfunction"]
        if fn == "core_completion_get_course_completion_status":
            return httpx.Response(200, json={"completionstatus": status, "warnings": []})
        items = [{"itemtype": "mod", "graderaw": 1}] + ([grade_item] if grade_item else [])
        return httpx.Response(200, json={"usergrades": [{"gradeitems": items}], "warnings": []})

    return respx.post(f"{MOODLE}/webservice/rest/server.php").mock(side_effect=answer)


COMPLETED = {"completed": True, "aggregation": 1, "completions": []}


def test_no_moodle_web_service_under_fetch_fails_visibly_naming_the_variables() -> None:
    with pytest.raises(Permanent) as info:
        enrich(record(), settings(**NO_LMS_API, GRADESYNC_INSECURE_DEV="1"))
    assert info.value.code == "lms_api_not_configured"
    assert "MOODLE_URL" in info.value.message and "completion_only" in info.value.message


def test_completion_only_without_a_web_service_is_a_completion_without_grade() -> None:
    found = enrich(record(), settings(**NO_LMS_API, MOODLE_GRADE_POLICY="completion_only"))
    assert found is not None and found.grade is None and found.instant is None
    assert found.note is not None and "completion_only" in found.note


@respx.mock
@pytest.mark.parametrize(
    "item",
    [
        None,  # no course total in the gradebook
        {"itemtype": "course", "graderaw": None, "grademax": 10, "gradeformatted": "-"},
    ],
)
def test_a_grade_moodle_has_not_computed_yet_is_unresolved(item: dict[str, Any] | None) -> None:
    moodle_answers(item, COMPLETED)
    with pytest.raises(Unresolved) as info:
        enrich(record(), settings())
    assert info.value.code == "grade_unavailable" and info.value.reason == "grade_unavailable"


@respx.mock
def test_completion_only_with_a_web_service_takes_moodle_s_instant_but_no_grade() -> None:
    status = json.loads(
        (FIXTURES / "moodle-core_completion_get_course_completion_status.json").read_text()
    )["completionstatus"]
    route = moodle_answers(None, status)
    found = enrich(record(), settings(MOODLE_GRADE_POLICY="completion_only"))
    assert found is not None and found.grade is None and found.instant is not None
    assert found.instant.source == "moodle_completion_criteria"
    assert found.instant.at == datetime.fromtimestamp(1795128000, UTC)  # 23:40, the day before
    assert route.call_count == 1  # the gradebook is not asked


@respx.mock
def test_an_unexpected_completion_status_is_a_typed_error() -> None:
    moodle_answers(None, {"completed": True})  # no aggregation, no completions
    with pytest.raises(Permanent) as info:
        enrich(record(), settings())
    assert info.value.code == "moodle_unexpected_response"


@respx.mock
def test_anewspring_fetch_policy() -> None:
    route = respx.get(f"{ASP}/api/getResults/57", params={"asStudent": "true"})
    route.respond(200, json={"courses": [{"id": "12", "completed": True, "grade": ""}]})
    with pytest.raises(Unresolved) as info:
        enrich(record("anewspring"), settings())
    assert info.value.code == "grade_unavailable"
    route.respond(200, json={"courses": [{"id": "12", "completed": True, "grade": "7.85"}]})
    found = enrich(record("anewspring"), settings())
    assert found is not None and found.grade == "7.9"  # dutch: one decimal, half up
    with pytest.raises(Permanent) as missing:
        enrich(record("anewspring"), settings(**NO_LMS_API))
    assert missing.value.code == "lms_api_not_configured"
    assert "ANEWSPRING_API_KEY" in missing.value.message


@pytest.mark.parametrize("policy", ["event", "completion_only"])
def test_anewspring_without_fetch_delivers_the_event_as_it_came(policy: str) -> None:
    found = enrich(record("anewspring"), settings(**NO_LMS_API, ANEWSPRING_GRADE_POLICY=policy))
    assert found is not None and found.grade is None
    assert found.note == f"anewspring/default: grade_policy {policy}: the event has no grade"


def test_an_event_that_carries_its_grade_needs_no_lms() -> None:
    carried = record(grade="8").model_copy(update={"needs": []})
    assert enrich(carried, settings(**NO_LMS_API)) is None


# -- the ledger: the corrected instant, and a grade after delivery without one -----------------


def event(**overrides: Any) -> CompletionEvent:
    data = {
        "source": "moodle",
        "event_id": "e1",
        "person_id": "57",
        "course_id": "12",
        "completed_at": "2026-11-20T00:20:00+01:00",
        **overrides,
    }
    return CompletionEvent.model_validate(data)


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(fakeredis.FakeRedis())


CRITERIA = CompletionInstant(
    at=datetime(2026, 11, 19, 22, 40, tzinfo=UTC), source="moodle_completion_criteria"
)


def delivered(ledger: Ledger, instant: CompletionInstant | None = None, **first: Any) -> str:
    rid = ledger.admit(event(**first), T0, (NEEDS_GRADE,)).record.id
    ledger.start(rid, T0)
    ledger.enriched(rid, T0, None, None, None, "completion_only", instant)
    ledger.deliver(rid, T0)
    return rid


def test_enrichment_replaces_the_instant_and_says_where_it_came_from(ledger: Ledger) -> None:
    rid = delivered(ledger, CRITERIA)
    rec = ledger.get(rid)
    assert rec is not None and rec.completed_at_source == "moodle_completion_criteria"
    assert rec.event.completed_at == CRITERIA.at and rec.needs == []
    lms = next(h for h in ledger.history(rid) if h["what"] == "lms")
    assert lms["completed_at"] == {
        "source": "moodle_completion_criteria",
        "at": CRITERIA.at.isoformat(),
        "event": "2026-11-20T00:20:00+01:00",
    }


def test_an_earlier_event_merged_in_brings_its_own_time_back_to_event_source(
    ledger: Ledger,
) -> None:
    rid = ledger.admit(event(), T0, (NEEDS_GRADE,)).record.id
    ledger.start(rid, T0)
    ledger.enriched(rid, T0, "8", None, None, None, CRITERIA)
    # A later one changes nothing (completion-time order, gradesync/merge.py) ...
    ledger.admit(event(event_id="e2", completed_at="2026-11-21T10:00:00+01:00"), T0)
    rec = ledger.get(rid)
    assert rec is not None and rec.completed_at_source == "moodle_completion_criteria"
    # ... an earlier one is the completion now, with its own time.
    ledger.admit(event(event_id="e3", completed_at="2026-11-19T10:00:00+01:00"), T0)
    rec = ledger.get(rid)
    assert rec is not None and rec.completed_at_source == "event"


def test_a_grade_for_a_completion_delivered_without_one_is_queued(ledger: Ledger) -> None:
    rid = delivered(ledger, CRITERIA)
    later = T0 + timedelta(days=2)
    admission = ledger.admit(event(event_id="e2", grade="7.5", completed_at=later), later)
    assert admission.outcome == "grade_added" and admission.enqueue
    rec = ledger.get(rid)
    assert rec is not None and rec.state == "queued" and rec.event.grade == "7.5"
    # everything else as first delivered: the completion date (and where it came from), the event
    assert rec.event.completed_at == CRITERIA.at and rec.event.id == "e1"
    assert rec.completed_at_source == "moodle_completion_criteria" and rec.needs == []
    assert ledger.take_unsent(later + timedelta(seconds=1), later) == [rid]
    entry = ledger.history(rid)[-1]
    assert entry["what"] == "grade_added" and entry["event_id"] == "e2"
    again = ledger.admit(event(event_id="e2", grade="7.5", completed_at=later), later)
    assert again.outcome == "duplicate" and not again.enqueue


@pytest.mark.parametrize(("first", "later"), [("8.5", "9"), (None, None)])
def test_other_events_after_delivery_still_change_nothing(
    ledger: Ledger, first: str | None, later: str | None
) -> None:
    rid = delivered(ledger, grade=first)
    admission = ledger.admit(event(event_id="e2", grade=later), T0)
    assert admission.outcome == "after_delivery" and not admission.enqueue
    assert ledger.get(rid).state == "delivered"  # type: ignore[union-attr]


def test_show_displays_where_the_completion_date_came_from(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = delivered(ledger, CRITERIA)
    monkeypatch.setattr(common, "ledger", lambda: ledger)
    shown = CliRunner().invoke(cli.app, ["show", rid])
    assert shown.exit_code == 0, shown.output
    assert "completed_at: 2026-11-19 23:40 CET (from moodle_completion_criteria)" in shown.output
    as_json = json.loads(CliRunner().invoke(cli.app, ["show", rid, "--json"]).output)
    assert as_json["completed_at_source"] == "moodle_completion_criteria"


def test_the_dev_stack_says_its_completions_come_without_fetched_grades() -> None:
    from gradesync.stack import _grade_policies

    env: dict[str, str] = {}
    notes = _grade_policies(env)
    assert env == {"MOODLE_GRADE_POLICY": "completion_only", "ANEWSPRING_GRADE_POLICY": "event"}
    assert len(notes) == 2 and "MOODLE_GRADE_POLICY=completion_only" in notes[0]
    operator = {"MOODLE_URL": "https://moodle.test", "ANEWSPRING_GRADE_POLICY": "fetch"}
    assert _grade_policies(operator) == []
    assert operator == {"MOODLE_URL": "https://moodle.test", "ANEWSPRING_GRADE_POLICY": "fetch"}
