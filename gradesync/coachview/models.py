"""Coachview records as gradesync sees them, in English; ``from_api`` reads Coachview's JSON."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict

from gradesync.coachview.api import ComponentField, EnrolmentComponentField, PersonField


class Person(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    extern_id: str | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Person:
        extern = data.get(PersonField.EXTERN_ID)
        return cls(id=data[PersonField.ID], extern_id=None if extern is None else str(extern))


class Component(BaseModel):
    """A training component carrying an e-learning course id."""

    model_config = ConfigDict(frozen=True)

    id: int
    training_id: int
    elearning_code: str | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Component:
        code = data.get(ComponentField.ELEARNING_CODE)
        return cls(
            id=data[ComponentField.ID],
            training_id=data[ComponentField.TRAINING_ID],
            elearning_code=None if code is None else str(code),
        )


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

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> EnrolmentComponent:
        f = EnrolmentComponentField
        audit = data.get(f.AUDIT) or {}
        result = data.get(f.RESULT)
        return cls(
            id=data[f.ID],
            enrolment_id=data[f.ENROLMENT_ID],
            component_id=data[f.COMPONENT_ID],
            person_id=data[f.PERSON_ID],
            result=None if result in (None, "") else str(result),
            attendance=bool(data.get(f.ATTENDANCE)),
            passed=bool(data.get(f.PASSED)),
            completed=bool(data.get(f.COMPLETED)),
            approved=bool(data.get(f.APPROVED)),
            approval_date=data.get(f.APPROVAL_DATE) or None,
            etag=audit.get(f.ETAG),
        )
