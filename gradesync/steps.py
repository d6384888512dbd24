"""Pure decisions for the five Coachview write steps, given the record's current state.

Every step is read-before-write: a field already holding what we want is skipped, so a
redelivered or resumed step never writes twice. The result is never replaced (first result wins).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from gradesync.entities import EnrolmentComponent

Step = Literal["result", "attendance", "passed", "completed", "approved"]


class Write(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["write"] = "write"
    fields: dict[str, Any]


class Skip(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["skip"] = "skip"
    reason: Literal["already_done", "no_grade"]


class KeepExisting(BaseModel):
    """Coachview already holds another result: keep it and report both grades."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["keep"] = "keep"
    existing: str
    new: str


Decision = Write | Skip | KeepExisting


def plan(
    step: Step, current: EnrolmentComponent, grade: str | None, approval_date: date
) -> Decision:
    if step == "result":
        if grade is None:
            return Skip(reason="no_grade")
        if current.result is None:
            return Write(fields={"result": grade})
        if current.result == grade:
            return Skip(reason="already_done")
        return KeepExisting(existing=current.result, new=grade)
    if step == "approved":
        if current.approved:
            return Skip(reason="already_done")
        return Write(fields={"approved": True, "approval_date": approval_date.isoformat()})
    if getattr(current, step):
        return Skip(reason="already_done")
    return Write(fields={step: True})


def would(decision: Decision, current: EnrolmentComponent) -> dict[str, Any]:
    """What a decision would do, for shadow mode's history: each field's old and new value, or
    why nothing would be written."""
    if isinstance(decision, Write):
        old = current.model_dump(mode="json")
        return {
            "writes": [
                {"field": field, "old": old[field], "new": new}
                for field, new in decision.fields.items()
            ]
        }
    if isinstance(decision, KeepExisting):
        return {
            "reason": "result_kept_existing",
            "existing": decision.existing,
            "new": decision.new,
        }
    return {"reason": decision.reason}
