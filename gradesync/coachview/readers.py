"""Coachview's JSON read into the domain's entities (gradesync/entities.py). A missing or
renamed field raises ``KeyError``/``ValueError``, which the client turns into
``unexpected_response`` naming the field."""

from __future__ import annotations

from typing import Any

from gradesync.coachview.api import ComponentField, EnrolmentComponentField, PersonField
from gradesync.entities import Component, EnrolmentComponent, Person


def person(data: dict[str, Any]) -> Person:
    extern = data.get(PersonField.EXTERN_ID)
    return Person(id=data[PersonField.ID], extern_id=None if extern is None else str(extern))


def component(data: dict[str, Any]) -> Component:
    code = data.get(ComponentField.ELEARNING_CODE)
    return Component(
        id=data[ComponentField.ID],
        training_id=data[ComponentField.TRAINING_ID],
        elearning_code=None if code is None else str(code),
    )


def enrolment_component(data: dict[str, Any]) -> EnrolmentComponent:
    f = EnrolmentComponentField
    audit = data.get(f.AUDIT) or {}
    result = data.get(f.RESULT)
    return EnrolmentComponent(
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
