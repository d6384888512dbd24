"""The doctor's result model: what was checked, how it went, and what to change."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

Status = Literal["ok", "warn", "fail"]


class Check(BaseModel):
    """One line of the doctor's table. ``fix`` names the environment variable or the Coachview
    setting to change; it is empty when there is nothing to do."""

    area: str
    name: str
    status: Status
    detail: str
    fix: str = ""


def ok(area: str, name: str, detail: str) -> Check:
    return Check(area=area, name=name, status="ok", detail=detail)


def warn(area: str, name: str, detail: str, fix: str = "") -> Check:
    return Check(area=area, name=name, status="warn", detail=detail, fix=fix)


def fail(area: str, name: str, detail: str, fix: str) -> Check:
    return Check(area=area, name=name, status="fail", detail=detail, fix=fix)


class Diagnosis(BaseModel):
    checks: list[Check]
    # Each counts against Coachview's daily budget: the operator should know what doctor spent.
    coachview_requests: int

    @property
    def healthy(self) -> bool:
        """Warnings are worth reading but do not stop a deployment; failures do."""
        return all(c.status != "fail" for c in self.checks)
