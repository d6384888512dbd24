"""Pure decisions for the two Coachview writes, given what Coachview holds now.

One conditional write per entity, carrying only the fields still missing: the participation
gets (1) the result, (2) attendance, (3) pass; the training-request component (4) completed,
(5) approved and (6) the approval date. Every plan is read-before-write: a field already holding
what we want is left out, so a redelivered or resumed step never writes a field twice. The
result is never replaced (first result wins): attendance and pass are still ticked.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from gradesync.entities import Participation, RequestComponent


class ResultKept(BaseModel):
    """Coachview already holds another result: it stays, and the record notes both grades."""

    model_config = ConfigDict(frozen=True)
    existing: str
    new: str

    def note(self) -> dict[str, Any]:
        return {"code": "result_kept_existing", "existing": self.existing, "new": self.new}


class Write(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["write"] = "write"
    fields: dict[str, Any]
    kept: ResultKept | None = None


class Skip(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["skip"] = "skip"
    reason: Literal["already_done"] = "already_done"
    kept: ResultKept | None = None


Decision = Write | Skip


def _decided(fields: dict[str, Any], kept: ResultKept | None = None) -> Decision:
    return Write(fields=fields, kept=kept) if fields else Skip(kept=kept)


def plan_participation(current: Participation, grade: str | None) -> Decision:
    """Effects 1–3: the result unless one is registered (none without a grade), attendance and
    pass unless ticked (Coachview locks them once set)."""
    fields: dict[str, Any] = {}
    kept = None
    if grade is not None:
        if current.result is None:
            fields["result"] = grade
        elif current.result != grade:
            kept = ResultKept(existing=current.result, new=grade)
    if not current.attendance:
        fields["attendance"] = True
    if not current.passed:
        fields["passed"] = True
    return _decided(fields, kept)


def plan_request_component(current: RequestComponent, approval_date: date) -> Decision:
    """Effects 4–6: completed, and approved dated the LMS completion day. An approval already
    given keeps its own date."""
    fields: dict[str, Any] = {}
    if not current.completed:
        fields["completed"] = True
    if not current.approved:
        fields["approved"] = True
        fields["approval_date"] = approval_date.isoformat()
    return _decided(fields)


def would(decision: Decision, current: Participation | RequestComponent) -> dict[str, Any]:
    """What a decision would do, for shadow mode's history: each field's old and new value, or
    why nothing would be written; and the kept result's two grades."""
    planned: dict[str, Any]
    if isinstance(decision, Write):
        old = current.model_dump(mode="json")
        planned = {
            "writes": [
                {"field": field, "old": old[field], "new": new}
                for field, new in decision.fields.items()
            ]
        }
    else:
        planned = {"reason": decision.reason}
    if decision.kept is not None:
        planned["note"] = decision.kept.note()
    return planned
