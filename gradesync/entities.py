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


class EnrolmentComponent(BaseModel):
    """A training-request component (opleidingsvraagonderdeel): one learner × one component."""

    model_config = ConfigDict(frozen=True)

    id: int
    enrolment_id: int
    component_id: int
    person_id: int
    result: str | None = None
    attendance: bool = False
    passed: bool = False
    completed: bool = False
    approved: bool = False
    approval_date: date | None = None
    etag: str | None = None
