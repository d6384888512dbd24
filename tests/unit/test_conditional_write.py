"""One conditional write per entity: on 412 that entity alone is read again and the write
planned again from what it now holds (a bounded number of times); never an unconditioned one."""

from __future__ import annotations

from typing import Any

import pytest

from gradesync.coachview.client import PARTICIPATION, Writable
from gradesync.entities import Participation
from gradesync.errors import PreconditionFailed
from gradesync.steps import Skip, Write, plan_participation
from workers import resources, tasks

SEAT = {"id": 1, "enrolment_id": 7001, "component_id": 9001, "person_id": 1001}


def participation(**fields: Any) -> Participation:
    return Participation.model_validate({**SEAT, **fields})


class Coachview:
    """Holds one participation; a write against an old etag is a 412."""

    def __init__(self, held: Participation, stale_writes: int = 0) -> None:
        self.held = held
        self.stale_writes = stale_writes
        self.sent: list[tuple[str, dict[str, Any] | None]] = []

    def get(self, kind: Writable[Any], entity_id: int) -> Participation:
        self.sent.append(("GET", None))
        return self.held

    def update(
        self, kind: Writable[Any], entity_id: int, fields: dict[str, Any], etag: str
    ) -> Participation:
        self.sent.append(("PUT", fields))
        if self.stale_writes or etag != self.held.etag:
            self.stale_writes = max(0, self.stale_writes - 1)
            raise PreconditionFailed("stale")
        self.held = self.held.model_copy(update={**fields, "etag": f"{etag}+"})
        return self.held


def write(
    monkeypatch: pytest.MonkeyPatch, coachview: Coachview, current: Participation
) -> tuple[Participation, Any, Any]:
    monkeypatch.setattr(resources, "coachview", lambda: coachview)
    return tasks._conditional_write(PARTICIPATION, current, lambda p: plan_participation(p, "8.5"))


def test_one_write_carries_every_missing_field(monkeypatch: pytest.MonkeyPatch) -> None:
    held = participation(etag='"1"')
    coachview = Coachview(held)
    written, decision, writes = write(monkeypatch, coachview, held)
    assert coachview.sent == [("PUT", {"result": "8.5", "attendance": True, "passed": True})]
    assert isinstance(decision, Write) and written.passed and written.result == "8.5"
    # What the console shows on the delivered record: each field, before and after.
    assert {"field": "result", "old": None, "new": "8.5"} in writes


def test_a_412_rereads_that_entity_and_writes_only_what_is_still_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Read by the roster before someone ticked attendance (or our own write landed).
    seen = participation(etag='"1"')
    coachview = Coachview(participation(attendance=True, etag='"2"'))
    write(monkeypatch, coachview, seen)
    assert coachview.sent == [
        ("PUT", {"result": "8.5", "attendance": True, "passed": True}),
        ("GET", None),
        ("PUT", {"result": "8.5", "passed": True}),
    ]


def test_a_redelivered_write_finds_everything_done_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = participation(etag='"1"')
    done = participation(result="8.5", attendance=True, passed=True, etag='"2"')
    coachview = Coachview(done)
    _, decision, _ = write(monkeypatch, coachview, seen)
    assert decision == Skip()
    assert [method for method, _ in coachview.sent] == ["PUT", "GET"]


def test_an_entity_that_keeps_changing_is_retried_later_not_forced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held = participation(etag='"1"')
    coachview = Coachview(held, stale_writes=99)
    with pytest.raises(PreconditionFailed):
        write(monkeypatch, coachview, held)
    puts = [method for method, _ in coachview.sent if method == "PUT"]
    assert len(puts) == tasks.STALE_REREADS


def test_without_an_etag_the_entity_is_read_before_it_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    coachview = Coachview(participation(etag='"1"'))
    write(monkeypatch, coachview, participation(etag=None))
    assert [method for method, _ in coachview.sent] == ["GET", "PUT"]
