"""Coachview's JSON read into the domain's entities (gradesync/entities.py). A missing field
raises ``KeyError``, a mistyped one :class:`~gradesync.http.FieldProblem`; the client turns
either into ``unexpected_response`` naming the field.

Types are read strictly: a lax reading turns an odd answer into a wrong fact (``bool("false")``
is ``True``: the write steps would skip attendance, pass and approval as "already set")."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

from gradesync.coachview.api import Audit, ComponentField, ParticipationField, PersonField
from gradesync.coachview.api import RequestComponentField as RequestField
from gradesync.entities import Component, Participation, Person, RequestComponent
from gradesync.http import FieldProblem


def _kind(value: Any) -> str:
    return {bool: "a boolean", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def identifier(data: dict[str, Any], field: str) -> int:
    """A required id: a JSON integer (``true`` is not an id, nor is ``"1001"``)."""
    value = data[field]
    if type(value) is not int:
        raise FieldProblem(field, f"expected an integer id, got {_kind(value)}")
    return value


def code(data: dict[str, Any], field: str) -> str | None:
    """An identifier we match LMS ids against (``externId``, ``elearningCode``): a string, or
    an integer read as its digits; missing or null is none."""
    value = data.get(field)
    if value is None or isinstance(value, str):
        return value
    if type(value) is int:
        return str(value)
    raise FieldProblem(field, f"expected a string, got {_kind(value)}")


def _flag(data: dict[str, Any], field: str) -> bool:
    value = data.get(field)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise FieldProblem(field, f"expected true or false, got {_kind(value)}")


def _result(data: dict[str, Any], field: str) -> str | None:
    value = data.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if type(value) in (int, float) and math.isfinite(value):
        return str(value)
    raise FieldProblem(field, f"expected a string or a number, got {_kind(value)}")


def _day(data: dict[str, Any], field: str) -> date | None:
    value = data.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            try:
                return datetime.fromisoformat(value).date()
            except ValueError:
                pass
    raise FieldProblem(field, f"expected an ISO date, got {_kind(value)}")


def _etag(data: dict[str, Any]) -> str | None:
    f = Audit
    audit = data.get(f.AUDIT)
    if audit is None:
        return None
    if not isinstance(audit, dict):
        raise FieldProblem(f.AUDIT, f"expected an object, got {_kind(audit)}")
    etag = audit.get(f.ETAG)
    if etag is None or isinstance(etag, str):
        return etag
    raise FieldProblem(f"{f.AUDIT}.{f.ETAG}", f"expected a string, got {_kind(etag)}")


def person(data: dict[str, Any]) -> Person:
    return Person(id=identifier(data, PersonField.ID), extern_id=code(data, PersonField.EXTERN_ID))


def component(data: dict[str, Any]) -> Component:
    f = ComponentField
    return Component(
        id=identifier(data, f.ID),
        training_id=identifier(data, f.TRAINING_ID),
        elearning_code=code(data, f.ELEARNING_CODE),
    )


def _optional_id(data: dict[str, Any], field: str) -> int | None:
    return None if data.get(field) is None else identifier(data, field)


def participation(data: dict[str, Any]) -> Participation:
    f = ParticipationField
    return Participation(
        id=identifier(data, f.ID),
        component_id=identifier(data, f.COMPONENT_ID),
        person_id=identifier(data, f.PERSON_ID),
        enrolment_id=_optional_id(data, f.ENROLMENT_ID),
        result=_result(data, f.RESULT),
        attendance=_flag(data, f.ATTENDANCE),
        passed=_flag(data, f.PASSED),
        etag=_etag(data),
    )


def request_component(data: dict[str, Any]) -> RequestComponent:
    f = RequestField
    return RequestComponent(
        id=identifier(data, f.ID),
        enrolment_id=identifier(data, f.ENROLMENT_ID),
        component_id=identifier(data, f.COMPONENT_ID),
        person_id=identifier(data, f.PERSON_ID),
        completed=_flag(data, f.COMPLETED),
        approved=_flag(data, f.APPROVED),
        approval_date=_day(data, f.APPROVAL_DATE),
        etag=_etag(data),
    )
