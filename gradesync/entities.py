"""Coachview's entities as the domain sees them, in English: what matching and the write steps
decide over. How Coachview spells them on the wire is the adapter's business
(gradesync/coachview/readers.py)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict


class Person(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    extern_id: str | None = None


class Component(BaseModel):
    """A training component carrying an e-learning course id."""

    model_config = ConfigDict(frozen=True)

    id: int
    training_id: int
    elearning_code: str | None = None


class Participation(BaseModel):
    """A participant's participation in one component (opleidingsonderdeeluitvoering): where
    Coachview keeps the result, attendance and pass."""

    model_config = ConfigDict(frozen=True)

    id: int
    component_id: int
    person_id: int
    # The enrolment it belongs to, when Coachview links it to one.
    enrolment_id: int | None = None
    result: str | None = None
    attendance: bool = False
    passed: bool = False
    etag: str | None = None


class RequestComponent(BaseModel):
    """A training-request component (opleidingsvraagonderdeel): one enrolment's part for one
    component, where Coachview keeps completed, approved and the approval date."""

    model_config = ConfigDict(frozen=True)

    id: int
    enrolment_id: int
    component_id: int
    person_id: int
    completed: bool = False
    approved: bool = False
    approval_date: date | None = None
    etag: str | None = None
