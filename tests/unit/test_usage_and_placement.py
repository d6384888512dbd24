"""`gradesync status`'s requests per completion and projection (gradesync/usage.py), and
`gradesync diagnose`'s look-ups (gradesync/diagnose.py), over fakeredis and a fake client."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import fakeredis
import pytest

from gradesync.coachview.budget import Budget, spending_for
from gradesync.coachview.client import PARTICIPATION, CoachviewClient, Writable
from gradesync.diagnose import diagnose
from gradesync.entities import Component, Participation, Person, RequestComponent
from gradesync.event import CompletionEvent
from gradesync.ledger import Ledger
from gradesync.settings import Delivery
from gradesync.usage import usage

TZ = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def delivered(ledger: Ledger, n: int, mode: Delivery) -> None:
    for i in range(n):
        event = CompletionEvent.model_validate(
            {
                "source": "moodle",
                "person_id": f"{mode}-{i}",
                "course_id": "12",
                "grade": "8",
                "completed_at": "2026-11-30T10:00:00+00:00",
            }
        )
        rid = ledger.admit(event, NOW).record.id
        ledger.delivery(rid, mode)
        ledger.start(rid, NOW)
        ledger.deliver(rid, NOW)


def sent(budget: Budget, n: int, mode: str) -> None:
    with spending_for(mode):
        for _ in range(n):
            budget.sending()


def test_status_counts_requests_per_completion_and_projects_per_mode() -> None:
    r = fakeredis.FakeRedis()
    ledger = Ledger(r)
    budget = Budget(r, reserve=25, clock=lambda: NOW.timestamp(), daily_limit=5000)
    delivered(ledger, 40, "rest")
    delivered(ledger, 10, "resultlink")
    sent(budget, 100, "rest")
    sent(budget, 3, "other")  # doctor, diagnose
    today = usage(ledger, budget, NOW, TZ)
    assert (today.requests, today.delivered) == (103, 50)
    assert today.per_completion == pytest.approx(2.06)
    assert today.remaining == 5000 - 25 - 103 and today.remaining_by == "local count"
    assert today.projected_left == int(4872 / 2.06)
    modes = {m.mode: m for m in today.modes}
    assert (modes["rest"].requests, modes["rest"].delivered) == (100, 40)
    assert modes["rest"].per_completion == 2.5 and modes["rest"].projected_left == 4872 * 2 // 5
    # The result link spent no REST request: the REST budget does not limit it.
    assert modes["resultlink"].per_completion == 0 and modes["resultlink"].projected_left is None
    assert modes["other"].delivered == 0 and modes["other"].per_completion is None


def test_status_before_any_request_has_no_rate() -> None:
    r = fakeredis.FakeRedis()
    today = usage(Ledger(r), Budget(r, reserve=25), NOW, TZ)
    assert today.requests == 0 and today.per_completion is None and today.projected_left is None
    assert today.remaining == 5000 - 25 and today.modes == []


def test_rest_deliveries_with_no_request_counted_have_no_rate_rather_than_no_limit() -> None:
    """After the local window ended (or before it began) REST deliveries show no request:
    that is an unknown rate, not a free one (only the result link is free of REST)."""
    r = fakeredis.FakeRedis()
    ledger = Ledger(r)
    delivered(ledger, 10, "rest")
    delivered(ledger, 4, "resultlink")
    today = usage(ledger, Budget(r, reserve=25), NOW, TZ)
    modes = {m.mode: m for m in today.modes}
    assert modes["rest"].per_completion is None and modes["rest"].projected_left is None
    assert modes["resultlink"].per_completion == 0
    assert today.per_completion is None


class Coachview:
    """What Coachview holds: persons by externId, components by course, enrolments."""

    def __init__(self, persons: dict[str, int], courses: dict[str, int], enrolled: bool) -> None:
        self.persons, self.courses, self.enrolled = persons, courses, enrolled
        self.calls: list[str] = []

    def find_persons(self, field: str, value: str) -> list[Person]:
        self.calls.append(f"GET persons {field}")
        found = self.persons.get(value) if field == "externId" else None
        return [] if found is None else [Person(id=found, extern_id=value)]

    def components_for_course(self, course_id: str) -> list[Component]:
        self.calls.append("GET components")
        cid = self.courses.get(course_id)
        return [] if cid is None else [Component(id=cid, training_id=1, elearning_code=course_id)]

    def rows(
        self, kind: Writable[Any], ids: list[int], person_id: int | None = None
    ) -> list[Participation] | list[RequestComponent]:
        self.calls.append(f"GET {kind.what}s")
        assert person_id is not None  # diagnose looks up one learner, never a roster
        if not self.enrolled:
            return []
        row: dict[str, Any] = {"component_id": ids[0], "person_id": person_id, "enrolment_id": 7}
        if kind is PARTICIPATION:
            return [Participation.model_validate(row | {"id": 2})]
        return [RequestComponent.model_validate(row | {"id": 1})]


@pytest.mark.parametrize(
    ("persons", "courses", "enrolled", "missing", "found"),
    [
        ({"57": 1001}, {"12": 9001}, True, None, [True, True, True]),
        ({"57": 1001}, {"12": 9001}, False, "not_enrolled", [True, True, False]),
        ({"57": 1001}, {}, True, "unknown_course", [True, False, None]),
        ({}, {"12": 9001}, True, "unknown_person", [False, True, None]),
        ({}, {}, True, "unknown_person", [False, False, None]),
    ],
)
def test_diagnose_names_what_coachview_lacks_and_only_reads(
    persons: dict[str, int],
    courses: dict[str, int],
    enrolled: bool,
    missing: str | None,
    found: list[bool | None],
) -> None:
    coachview = Coachview(persons, courses, enrolled)
    placement = diagnose(cast(CoachviewClient, coachview), "57", ("externId", "id"), "12")
    assert placement.missing == missing
    assert [c.found for c in placement.checks] == found
    assert all(call.startswith("GET") for call in coachview.calls)
