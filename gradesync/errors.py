"""Typed outcomes of a remote call (Coachview or an LMS): what happens next depends on the type."""

from __future__ import annotations

from typing import Literal

# grade_unavailable: the LMS has not computed the grade yet (e.g. no course total in Moodle).
# not_placed: the result link's 404, one of the first three without saying which.
UnresolvedReason = Literal[
    "unknown_person", "unknown_course", "not_enrolled", "not_placed", "grade_unavailable"
]


class RemoteError(Exception):
    code: str = "remote_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class Unresolved(RemoteError):
    """Coachview cannot place the result yet, or the LMS has no grade yet; the daily retry may
    succeed later."""

    def __init__(self, reason: UnresolvedReason, message: str) -> None:
        super().__init__(message, code=reason)
        self.reason = reason


class Transient(RemoteError):
    """5xx, 429, timeouts, connection errors: the same request may succeed soon."""

    code = "transient"

    def __init__(self, message: str, *, retry_after: float | None = None, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Permanent(RemoteError):
    """Coachview rejected the request; repeating it unchanged cannot help."""

    code = "rejected"


class UnexpectedResponse(Permanent):
    """The other side answered something the client does not understand (not JSON, a missing or
    renamed field, an empty body, a redirect, a login page): repeating it would only repeat the
    answer, so the record ends ``failed`` with what came back, for a person to look at."""

    code = "unexpected_response"


class PreconditionFailed(RemoteError):
    """The record changed since we read it (stale ``If-Match``): re-read and decide again."""

    code = "stale"
