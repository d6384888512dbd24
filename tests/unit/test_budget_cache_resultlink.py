from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import date
from typing import Any

import fakeredis
import pytest

from gradesync.coachview.budget import Budget, BudgetExhausted, parse_reset
from gradesync.coachview.cache import Directory
from gradesync.coachview.resultlink import ResultMessage, render, sign
from gradesync.entities import Component, Person
from gradesync.errors import Unresolved


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def headers(remaining: int, reset: float, limit: int = 5000) -> dict[str, str]:
    return {
        "X-Rate-Limit-Limit": str(limit),
        "X-Rate-Limit-Remaining": str(remaining),
        "X-Rate-Limit-Reset": str(int(reset)),
    }


def test_reset_header_forms() -> None:
    now = 1_800_000_000.0
    assert parse_reset("1800000600", now) == 1_800_000_600
    assert parse_reset("600", now) == now + 600
    assert parse_reset("Wed, 21 Oct 2015 07:28:00 GMT", now) == 1445412480.0
    assert parse_reset("soon", now) is None and parse_reset(None, now) is None


def test_budget_refuses_at_the_reserve_until_the_reset() -> None:
    clock = Clock()
    budget = Budget(fakeredis.FakeRedis(), reserve=10, clock=clock)
    budget.check()  # nothing seen yet: no opinion
    reset = clock.now + 3600
    budget.observe(headers(11, reset))
    budget.check()
    budget.observe(headers(10, reset))
    with pytest.raises(BudgetExhausted) as info:
        budget.check()
    assert info.value.resume_at == int(reset)
    clock.now = reset + 1
    budget.check()  # a new window


def test_budget_keeps_the_lowest_remaining_within_a_window() -> None:
    clock = Clock()
    budget = Budget(fakeredis.FakeRedis(), reserve=0, clock=clock)
    reset = clock.now + 100
    budget.observe(headers(40, reset))
    budget.observe(headers(45, reset))  # a slower worker's older response
    snap = budget.snapshot()
    assert snap is not None and snap["remaining"] == 40 and snap["used"] == 4960
    budget.observe(headers(4999, reset + 86400))  # next window
    assert budget.snapshot()["remaining"] == 4999  # type: ignore[index]


def test_budget_ignores_responses_without_headers() -> None:
    budget = Budget(fakeredis.FakeRedis(), reserve=0)
    budget.observe({})
    assert budget.snapshot() is None


class FakeClient:
    """Counts look-ups; answers like Coachview would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def find_persons(self, field: str, value: str) -> list[Person]:
        self.calls.append((field, value))
        return [Person(id=1001, extern_id="57")] if (field, value) == ("id", "1001") else []

    def components_for_course(self, course_id: str) -> list[Component]:
        self.calls.append(("course", course_id))
        if course_id == "12":
            return [Component(id=9001, training_id=501, elearning_code="12")]
        return []


def directory(ttl: int = 60) -> tuple[Directory, FakeClient]:
    client = FakeClient()
    return Directory(client, fakeredis.FakeRedis(), ttl), client  # type: ignore[arg-type]


def test_person_found_on_the_second_field_is_cached() -> None:
    d, client = directory()
    for _ in range(3):
        assert d.person("1001", ["externId", "id"]).id == 1001
    assert client.calls == [("externId", "1001"), ("id", "1001")]


def test_misses_are_not_cached_so_new_persons_are_found() -> None:
    d, client = directory()
    for _ in range(2):
        with pytest.raises(Unresolved):
            d.person("999", ["externId", "id"])
    assert len(client.calls) == 4


def test_course_components_looked_up_once_for_all_learners() -> None:
    d, client = directory()
    for _ in range(5):
        assert [c.id for c in d.components("12")] == [9001]
    assert client.calls == [("course", "12")]
    with pytest.raises(Unresolved) as info:
        d.components("77")
    assert info.value.reason == "unknown_course"


def test_ttl_zero_disables_the_cache() -> None:
    d, client = directory(ttl=0)
    d.components("12")
    d.components("12")
    assert len(client.calls) == 2


def message(**overrides: Any) -> ResultMessage:
    base = {
        "person_id": 1001,
        "extern_id": "57",
        "course_id": "12",
        "grade": "8.5",
        "completed_on": date(2026, 11, 20),
    }
    return ResultMessage.model_validate({**base, **overrides})


def test_result_message_escapes_text() -> None:
    body = render(message(grade="<9 & up>"))
    assert body.startswith(b"<?xml") and b"<Cijfer>&lt;9 &amp; up&gt;</Cijfer>" in body


def test_completion_without_grade_has_no_grade_element() -> None:
    body = render(message(grade=None))
    assert b"Cijfer" not in body and b"<Afgerond>true</Afgerond>" in body


def test_signature_is_base64_hmac_sha512() -> None:
    body = render(message())
    expected = base64.b64encode(hmac.new(b"s3cret", body, hashlib.sha512).digest()).decode()
    assert sign(body, "s3cret") == expected and len(expected) == 88  # 64 bytes in base64


def test_capacity_counts_what_the_budget_can_still_finish() -> None:
    clock = Clock()
    budget = Budget(fakeredis.FakeRedis(), reserve=3, clock=clock)
    assert budget.capacity(7) == (5000 - 3) // 7  # nothing known: COACHVIEW_DAILY_LIMIT
    budget.observe(headers(40, clock.now + 10, limit=50))
    assert budget.capacity(7) == 5  # (40 - 3) // 7
    clock.now += 11  # the window has reset: the whole limit is there again
    assert budget.capacity(7) == 6  # (50 - 3) // 7
