"""The simulator's in-memory Coachview: data, Coachview's write rules, and counters.

All access goes through one lock, so the HTTP server may serve requests on many threads.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from coachview_sim import wire
from coachview_sim.preconditions import if_match_holds, strong_etag
from coachview_sim.resultlink import ResultMessage

WRITE_COUNTERS = ("result", "attendance", "passed", "completed", "approved")


class SeedPerson(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    externId: str | None = None
    firstName: str = ""
    lastName: str = ""


class SeedComponent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    name: str = ""
    elearningCourseId: str | None = None


class SeedTraining(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    name: str = ""
    components: list[SeedComponent] = Field(default_factory=list)


class SeedEnrolment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    personId: int
    trainingId: int


class SeedResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enrolmentId: int
    componentId: int
    result: str


class Seed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    persons: list[SeedPerson] = Field(default_factory=list)
    trainings: list[SeedTraining] = Field(default_factory=list)
    enrolments: list[SeedEnrolment] = Field(default_factory=list)
    results: list[SeedResult] = Field(default_factory=list)


class EnrolmentComponentRow(BaseModel):
    id: int
    enrolment_id: int
    component_id: int
    person_id: int
    result: str | None = None
    attendance: bool = False
    passed: bool = False
    completed: bool = False
    approved: bool = False
    approval_date: str | None = None
    version: int = 1
    writes: Counter[str] = Field(default_factory=Counter)

    @property
    def etag(self) -> str:
        return strong_etag(f"{self.id}-{self.version}")

    def to_api(self) -> dict[str, Any]:
        return {
            wire.E_ID: self.id,
            wire.E_ENROLMENT_ID: self.enrolment_id,
            wire.E_COMPONENT_ID: self.component_id,
            wire.E_PERSON_ID: self.person_id,
            wire.E_RESULT: self.result,
            wire.E_ATTENDANCE: self.attendance,
            wire.E_PASSED: self.passed,
            wire.E_COMPLETED: self.completed,
            wire.E_APPROVED: self.approved,
            wire.E_APPROVAL_DATE: self.approval_date,
            wire.E_AUDIT: {wire.E_ETAG: self.etag},
        }

    def to_state(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "enrolmentId": self.enrolment_id,
            "componentId": self.component_id,
            "personId": self.person_id,
            "result": self.result,
            "attendance": self.attendance,
            "passed": self.passed,
            "completed": self.completed,
            "approved": self.approved,
            "approvalDate": self.approval_date,
            "writes": {k: self.writes.get(k, 0) for k in WRITE_COUNTERS},
        }


class RuleViolation(Exception):
    """A write Coachview refuses (409), e.g. changing a locked field."""


class StaleEtag(Exception):
    """``If-Match`` does not match the current version (412)."""


class PreconditionRequired(Exception):
    """A write without ``If-Match`` (428): Coachview would not know what the writer saw."""


class NotFound(Exception):
    pass


T = TypeVar("T")


class Collection(Generic[T]):
    """One resource's rows, filtered the way Coachview's ``where=`` does, with equality indexes
    on the fields clients look rows up by (a real Coachview has them too: without them the
    simulator's cost grows with its data and skews the benchmarks)."""

    def __init__(
        self, api: Callable[[T], dict[str, Any]], known: Iterable[str], indexed: tuple[str, ...]
    ) -> None:
        self.api, self.known, self.indexed = api, frozenset(known), indexed
        self.items: list[T] = []
        self.index: dict[str, dict[str, list[T]]] = {field: {} for field in indexed}

    def add(self, item: T) -> None:
        self.items.append(item)
        data = self.api(item)
        for field in self.indexed:
            self.index[field].setdefault(str(data[field]), []).append(item)

    def query(self, where: dict[str, list[str]]) -> list[dict[str, Any]]:
        unknown = sorted(set(where) - self.known)
        if unknown:
            raise ValueError(f"unknown where field(s): {', '.join(unknown)}")
        candidates: Iterable[T] = self.items
        for field in self.indexed:
            if field in where:
                index = self.index[field]
                candidates = [i for v in dict.fromkeys(where[field]) for i in index.get(v, ())]
                break
        rows = (self.api(item) for item in candidates)
        return [r for r in rows if all(str(r.get(f)) in values for f, values in where.items())]


# Writable API field → row attribute, and the write counter each attribute increments.
_ATTR = {
    wire.E_RESULT: "result",
    wire.E_ATTENDANCE: "attendance",
    wire.E_PASSED: "passed",
    wire.E_COMPLETED: "completed",
    wire.E_APPROVED: "approved",
    wire.E_APPROVAL_DATE: "approval_date",
}
_COUNTER = {"approval_date": "approved"}


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.persons: dict[int, SeedPerson] = {}
            self.trainings: dict[int, SeedTraining] = {}
            self.components: dict[int, tuple[int, SeedComponent]] = {}
            self.enrolments: dict[int, SeedEnrolment] = {}
            self.rows: dict[tuple[int, int], EnrolmentComponentRow] = {}
            self.rows_by_id: dict[int, EnrolmentComponentRow] = {}
            self._next_row_id = 1
            self.person_rows = _persons()
            self.component_rows = _components()
            self.enrolment_component_rows = _enrolment_components()

    def seed(self, seed: Seed) -> dict[str, int]:
        with self.lock:
            for p in seed.persons:
                self.persons[p.id] = p
            for t in seed.trainings:
                self.trainings[t.id] = t
                for c in t.components:
                    self.components[c.id] = (t.id, c)
            # A person or training seeded again replaces the old one: rebuild those indexes.
            self.person_rows, self.component_rows = _persons(), _components()
            for person in self.persons.values():
                self.person_rows.add(person)
            for component in self.components.values():
                self.component_rows.add(component)
            for e in seed.enrolments:
                if e.personId not in self.persons:
                    raise ValueError(f"enrolment {e.id}: unknown personId {e.personId}")
                if e.trainingId not in self.trainings:
                    raise ValueError(f"enrolment {e.id}: unknown trainingId {e.trainingId}")
                self.enrolments[e.id] = e
                for c in self.trainings[e.trainingId].components:
                    self._row(e, c.id)
            for r in seed.results:
                row = self.rows.get((r.enrolmentId, r.componentId))
                if row is None:
                    raise ValueError(
                        f"result: enrolment {r.enrolmentId} has no component {r.componentId}"
                    )
                row.result = r.result
                row.version += 1
            return {"persons": len(self.persons), "enrolmentComponents": len(self.rows)}

    def _row(self, e: SeedEnrolment, component_id: int) -> EnrolmentComponentRow:
        key = (e.id, component_id)
        if key not in self.rows:
            row = EnrolmentComponentRow(
                id=self._next_row_id,
                enrolment_id=e.id,
                component_id=component_id,
                person_id=e.personId,
            )
            self._next_row_id += 1
            self.rows[key] = row
            self.rows_by_id[row.id] = row
            self.enrolment_component_rows.add(row)
        return self.rows[key]

    # -- API reads ------------------------------------------------------------------------------

    @staticmethod
    def person_api(p: SeedPerson) -> dict[str, Any]:
        return {
            wire.P_ID: p.id,
            wire.P_EXTERN_ID: p.externId,
            wire.P_FIRST_NAME: p.firstName,
            wire.P_LAST_NAME: p.lastName,
        }

    def person(self, pid: int) -> dict[str, Any]:
        with self.lock:
            p = self.persons.get(pid)
            if p is None:
                raise NotFound(f"person {pid}")
            return self.person_api(p)

    def query_persons(self, where: dict[str, list[str]]) -> list[dict[str, Any]]:
        with self.lock:
            return self.person_rows.query(where)

    def query_components(self, where: dict[str, list[str]]) -> list[dict[str, Any]]:
        with self.lock:
            return self.component_rows.query(where)

    def query_enrolment_components(self, where: dict[str, list[str]]) -> list[dict[str, Any]]:
        with self.lock:
            return self.enrolment_component_rows.query(where)

    def enrolment_component(self, ec_id: int) -> dict[str, Any]:
        with self.lock:
            row = self.rows_by_id.get(ec_id)
            if row is None:
                raise NotFound(f"enrolment component {ec_id}")
            return row.to_api()

    # -- API writes: Coachview's rules ---------------------------------------------------------

    def update_enrolment_component(
        self, ec_id: int, body: dict[str, Any], if_match: list[str]
    ) -> dict[str, Any]:
        """``if_match``: every ``If-Match`` header line the request carried."""
        with self.lock:
            row = self.rows_by_id.get(ec_id)
            if row is None:
                raise NotFound(f"enrolment component {ec_id}")
            if not if_match:
                raise PreconditionRequired("a write needs If-Match with the etag last read")
            if not if_match_holds(if_match, row.etag):
                raise StaleEtag(f"If-Match {', '.join(if_match)} does not match {row.etag}")
            unknown = sorted(set(body) - set(_ATTR))
            if unknown:
                raise RuleViolation(f"fields not writable: {', '.join(unknown)}")
            self._check_rules(row, body)
            counted = set()
            for field, value in body.items():
                attr = _ATTR[field]
                setattr(row, attr, value)
                counted.add(_COUNTER.get(attr, attr))
            for name in counted:
                row.writes[name] += 1
            row.version += 1
            return row.to_api()

    @staticmethod
    def _check_rules(row: EnrolmentComponentRow, body: dict[str, Any]) -> None:
        if wire.E_RESULT in body:
            value = body[wire.E_RESULT]
            if not isinstance(value, str) or not value.strip():
                raise RuleViolation(f"{wire.E_RESULT} must be a non-empty string")
            if row.result is not None and row.result != value:
                raise RuleViolation("a result is already registered and is not replaced")
        for field, attr in ((wire.E_ATTENDANCE, "attendance"), (wire.E_PASSED, "passed")):
            if field in body:
                if not isinstance(body[field], bool):
                    raise RuleViolation(f"{field} must be a boolean")
                if getattr(row, attr) and body[field] is not True:
                    raise RuleViolation(f"{field} is locked once set")
        for field in (wire.E_COMPLETED, wire.E_APPROVED):
            if field in body and not isinstance(body[field], bool):
                raise RuleViolation(f"{field} must be a boolean")
        if wire.E_APPROVAL_DATE in body:
            _valid_date(body[wire.E_APPROVAL_DATE])

    def apply_result(self, message: ResultMessage) -> None:
        """The result link: Coachview applies the six effects itself, by its own rules."""
        with self.lock:
            person_id = self._result_link_person(message)
            rows = [
                row
                for row in self.rows.values()
                if row.person_id == person_id
                and self.components[row.component_id][1].elearningCourseId == message.course_id
            ]
            if not rows:
                raise NotFound("no enrolment of this person on a component with this course id")
            row = max(rows, key=lambda r: (not r.approved, r.enrolment_id))
            changed: list[str] = []
            if message.grade is not None and row.result is None:
                row.result = message.grade
                changed.append("result")
            for attr in ("attendance", "passed", "completed"):
                if not getattr(row, attr):
                    setattr(row, attr, True)
                    changed.append(attr)
            if not row.approved:
                row.approved, row.approval_date = True, message.completed_on.isoformat()
                changed.append("approved")
            for name in changed:
                row.writes[name] += 1
            if changed:
                row.version += 1

    def _result_link_person(self, message: ResultMessage) -> int:
        """Coachview's own match of the learner: one person with this ``ExternId``, else the
        person with this ``PersoonId``."""
        if message.extern_id is not None:
            found = self.person_rows.index[wire.P_EXTERN_ID].get(message.extern_id, [])
            if len(found) == 1:
                return found[0].id
        if message.person_id is not None and message.person_id in self.persons:
            return message.person_id
        raise NotFound("no person with this ExternId or PersoonId")

    def state(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.to_state() for r in sorted(self.rows.values(), key=lambda r: r.id)]


def _valid_date(value: Any) -> None:
    try:
        date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise RuleViolation(f"{wire.E_APPROVAL_DATE} must be an ISO date (YYYY-MM-DD)") from exc


def _component_api(item: tuple[int, SeedComponent]) -> dict[str, Any]:
    training_id, c = item
    return {
        wire.C_ID: c.id,
        wire.C_TRAINING_ID: training_id,
        wire.C_NAME: c.name,
        wire.C_FORM: "Elearning" if c.elearningCourseId else "Klassikaal",
        wire.C_ELEARNING_CODE: c.elearningCourseId,
    }


def _persons() -> Collection[SeedPerson]:
    known = Store.person_api(SeedPerson(id=0))
    return Collection(Store.person_api, known, (wire.P_ID, wire.P_EXTERN_ID))


def _components() -> Collection[tuple[int, SeedComponent]]:
    known = _component_api((0, SeedComponent(id=0)))
    return Collection(_component_api, known, (wire.C_ELEARNING_CODE,))


def _enrolment_components() -> Collection[EnrolmentComponentRow]:
    sample = EnrolmentComponentRow(id=0, enrolment_id=0, component_id=0, person_id=0)
    return Collection(EnrolmentComponentRow.to_api, sample.to_api(), (wire.E_ID, wire.E_PERSON_ID))
