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
PARTICIPATION_IDS = 100_000


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


class Versioned(BaseModel):
    """An entity written with ``If-Match``: its strong etag changes with every write."""

    id: int
    enrolment_id: int
    component_id: int
    person_id: int
    version: int = 1

    @property
    def etag(self) -> str:
        return strong_etag(f"{self.id}-{self.version}")


class ParticipationRow(Versioned):
    result: str | None = None
    attendance: bool = False
    passed: bool = False

    def to_api(self) -> dict[str, Any]:
        return {
            wire.U_ID: self.id,
            wire.U_COMPONENT_ID: self.component_id,
            wire.U_PERSON_ID: self.person_id,
            wire.U_ENROLMENT_ID: self.enrolment_id,
            wire.U_RESULT: self.result,
            wire.U_ATTENDANCE: self.attendance,
            wire.U_PASSED: self.passed,
            wire.AUDIT: {wire.ETAG: self.etag},
        }


class RequestRow(Versioned):
    completed: bool = False
    approved: bool = False
    approval_date: str | None = None

    def to_api(self) -> dict[str, Any]:
        return {
            wire.V_ID: self.id,
            wire.V_ENROLMENT_ID: self.enrolment_id,
            wire.V_COMPONENT_ID: self.component_id,
            wire.V_PERSON_ID: self.person_id,
            wire.V_COMPLETED: self.completed,
            wire.V_APPROVED: self.approved,
            wire.V_APPROVAL_DATE: self.approval_date,
            wire.AUDIT: {wire.ETAG: self.etag},
        }


class Seat(BaseModel):
    """One enrolment × component: its participation and its training-request component, and
    how often each of the six effects' fields was written (``/_sim/state`` merges them)."""

    participation: ParticipationRow
    request: RequestRow
    writes: Counter[str] = Field(default_factory=Counter)

    def to_state(self) -> dict[str, Any]:
        p, r = self.participation, self.request
        return {
            "id": r.id,
            "enrolmentId": r.enrolment_id,
            "componentId": r.component_id,
            "personId": r.person_id,
            "result": p.result,
            "attendance": p.attendance,
            "passed": p.passed,
            "completed": r.completed,
            "approved": r.approved,
            "approvalDate": r.approval_date,
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


# Writable API field → row attribute, per entity; the write counter an attribute increments.
_PARTICIPATION_ATTRS = {
    wire.U_RESULT: "result",
    wire.U_ATTENDANCE: "attendance",
    wire.U_PASSED: "passed",
}
_REQUEST_ATTRS = {
    wire.V_COMPLETED: "completed",
    wire.V_APPROVED: "approved",
    wire.V_APPROVAL_DATE: "approval_date",
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
            self.seats: dict[tuple[int, int], Seat] = {}
            self.by_participation: dict[int, Seat] = {}
            self.by_request: dict[int, Seat] = {}
            self._next_id = 1
            self.person_rows = _persons()
            self.component_rows = _components()
            self.participation_rows = _participations()
            self.request_rows = _requests()

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
                    self._seat(e, c.id)
            for r in seed.results:
                seat = self.seats.get((r.enrolmentId, r.componentId))
                if seat is None:
                    raise ValueError(
                        f"result: enrolment {r.enrolmentId} has no component {r.componentId}"
                    )
                seat.participation.result = r.result
                seat.participation.version += 1
            return {"persons": len(self.persons), "enrolmentComponents": len(self.seats)}

    def seeded(self) -> Seed:
        """Persons, trainings and enrolments as seeded: what an administrator changes (results
        are in :meth:`state`)."""
        with self.lock:
            return Seed(
                persons=list(self.persons.values()),
                trainings=list(self.trainings.values()),
                enrolments=list(self.enrolments.values()),
            )

    def _seat(self, e: SeedEnrolment, component_id: int) -> Seat:
        """Both entities of one enrolment × component. Their ids differ (participation n is
        PARTICIPATION_IDS + n), so a client that writes one entity by the other's id fails."""
        key = (e.id, component_id)
        if key not in self.seats:
            ids = {"enrolment_id": e.id, "component_id": component_id, "person_id": e.personId}
            n = self._next_id
            self._next_id += 1
            seat = Seat(
                participation=ParticipationRow(id=PARTICIPATION_IDS + n, **ids),
                request=RequestRow(id=n, **ids),
            )
            self.seats[key] = seat
            self.by_participation[seat.participation.id] = seat
            self.by_request[seat.request.id] = seat
            self.participation_rows.add(seat.participation)
            self.request_rows.add(seat.request)
        return self.seats[key]

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

    def query_participations(self, where: dict[str, list[str]]) -> list[dict[str, Any]]:
        with self.lock:
            return self.participation_rows.query(where)

    def query_requests(self, where: dict[str, list[str]]) -> list[dict[str, Any]]:
        with self.lock:
            return self.request_rows.query(where)

    def participation(self, pid: int) -> dict[str, Any]:
        with self.lock:
            return self._found(self.by_participation, pid, "participation").participation.to_api()

    def request(self, rid: int) -> dict[str, Any]:
        with self.lock:
            return self._found(self.by_request, rid, "request component").request.to_api()

    @staticmethod
    def _found(seats: dict[int, Seat], entity_id: int, what: str) -> Seat:
        seat = seats.get(entity_id)
        if seat is None:
            raise NotFound(f"{what} {entity_id}")
        return seat

    # -- API writes: Coachview's rules ---------------------------------------------------------

    def update_participation(
        self, pid: int, body: dict[str, Any], if_match: list[str]
    ) -> dict[str, Any]:
        """``if_match``: every ``If-Match`` header line the request carried."""
        with self.lock:
            seat = self._found(self.by_participation, pid, "participation")
            row = seat.participation
            self._writable(row, body, if_match, _PARTICIPATION_ATTRS)
            if wire.U_RESULT in body:
                value = body[wire.U_RESULT]
                if not isinstance(value, str) or not value.strip():
                    raise RuleViolation(f"{wire.U_RESULT} must be a non-empty string")
                if row.result is not None and row.result != value:
                    raise RuleViolation("a result is already registered and is not replaced")
            for field, attr in ((wire.U_ATTENDANCE, "attendance"), (wire.U_PASSED, "passed")):
                if field in body:
                    if not isinstance(body[field], bool):
                        raise RuleViolation(f"{field} must be a boolean")
                    if getattr(row, attr) and body[field] is not True:
                        raise RuleViolation(f"{field} is locked once set")
            self._apply(seat, row, {_PARTICIPATION_ATTRS[f]: v for f, v in body.items()})
            return row.to_api()

    def update_request(self, rid: int, body: dict[str, Any], if_match: list[str]) -> dict[str, Any]:
        with self.lock:
            seat = self._found(self.by_request, rid, "request component")
            row = seat.request
            self._writable(row, body, if_match, _REQUEST_ATTRS)
            for field in (wire.V_COMPLETED, wire.V_APPROVED):
                if field in body and not isinstance(body[field], bool):
                    raise RuleViolation(f"{field} must be a boolean")
            if wire.V_APPROVAL_DATE in body:
                _valid_date(body[wire.V_APPROVAL_DATE])
            self._apply(seat, row, {_REQUEST_ATTRS[f]: v for f, v in body.items()})
            return row.to_api()

    @staticmethod
    def _writable(
        row: Versioned, body: dict[str, Any], if_match: list[str], attrs: dict[str, str]
    ) -> None:
        if not if_match:
            raise PreconditionRequired("a write needs If-Match with the etag last read")
        if not if_match_holds(if_match, row.etag):
            raise StaleEtag(f"If-Match {', '.join(if_match)} does not match {row.etag}")
        unknown = sorted(set(body) - set(attrs))
        if unknown:
            raise RuleViolation(f"fields not writable: {', '.join(unknown)}")

    @staticmethod
    def _apply(seat: Seat, row: Versioned, values: dict[str, Any]) -> None:
        """One write: the fields set, each effect counted once, one new version."""
        for attr, value in values.items():
            setattr(row, attr, value)
        for name in {_COUNTER.get(attr, attr) for attr in values}:
            seat.writes[name] += 1
        row.version += 1

    def apply_result(self, message: ResultMessage) -> None:
        """The result link: Coachview applies the six effects itself, by its own rules."""
        with self.lock:
            person_id = self._result_link_person(message)
            seats = [
                seat
                for seat in self.seats.values()
                if seat.request.person_id == person_id
                and self.components[seat.request.component_id][1].elearningCourseId
                == message.course_id
            ]
            if not seats:
                raise NotFound("no enrolment of this person on a component with this course id")
            seat = max(seats, key=lambda s: (not s.request.approved, s.request.enrolment_id))
            p, r = seat.participation, seat.request
            took: dict[str, Any] = {}
            if message.grade is not None and p.result is None:
                took["result"] = message.grade
            took |= {attr: True for attr in ("attendance", "passed") if not getattr(p, attr)}
            if took:
                self._apply(seat, p, took)
            ticks: dict[str, Any] = {} if r.completed else {"completed": True}
            if not r.approved:
                ticks |= {"approved": True, "approval_date": message.completed_on.isoformat()}
            if ticks:
                self._apply(seat, r, ticks)

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
            return [s.to_state() for s in sorted(self.seats.values(), key=lambda s: s.request.id)]


def _valid_date(value: Any) -> None:
    try:
        date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise RuleViolation(f"{wire.V_APPROVAL_DATE} must be an ISO date (YYYY-MM-DD)") from exc


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


def _participations() -> Collection[ParticipationRow]:
    sample = ParticipationRow(id=0, enrolment_id=0, component_id=0, person_id=0)
    indexed = (wire.U_ID, wire.U_PERSON_ID, wire.U_COMPONENT_ID)
    return Collection(ParticipationRow.to_api, sample.to_api(), indexed)


def _requests() -> Collection[RequestRow]:
    sample = RequestRow(id=0, enrolment_id=0, component_id=0, person_id=0)
    indexed = (wire.V_ID, wire.V_PERSON_ID, wire.V_COMPONENT_ID)
    return Collection(RequestRow.to_api, sample.to_api(), indexed)
