"""Typed outcomes of a Coachview call: what the pipeline does next depends only on the type."""

from __future__ import annotations

from typing import Literal

UnresolvedReason = Literal["unknown_person", "unknown_course", "not_enrolled"]


class CoachviewError(Exception):
    code: str = "coachview_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class Unresolved(CoachviewError):
    """Coachview cannot place the result yet; the daily retry may succeed later."""

    def __init__(self, reason: UnresolvedReason, message: str) -> None:
        super().__init__(message, code=reason)
        self.reason = reason


class Transient(CoachviewError):
    """5xx, 429, timeouts, connection errors: the same request may succeed soon."""

    code = "transient"

    def __init__(self, message: str, *, retry_after: float | None = None, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Permanent(CoachviewError):
    """Coachview rejected the request; repeating it unchanged cannot help."""

    code = "rejected"


class PreconditionFailed(CoachviewError):
    """The record changed since we read it (stale ``If-Match``): re-read and decide again."""

    code = "stale"
