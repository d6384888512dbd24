"""Moodle web services (REST protocol, JSON) for what the webhook lacks: the grade, id numbers.

``{MOODLE_URL}/webservice/rest/server.php?wstoken=…&wsfunction=…&moodlewsrestformat=json``.
Functions (Moodle core): ``gradereport_user_get_grade_items(courseid, userid)`` → the item
with ``itemtype == "course"`` is the course total (``graderaw``, ``grademax``,
``gradeformatted``); ``core_completion_get_course_completion_status(courseid, userid)`` →
``completionstatus{completed, aggregation, completions[{…, complete, timecompleted}]}``
(``completion/classes/external.php``; the instant rule is :mod:`gradesync.completion_time`);
``core_user_get_users_by_field(field, values[])``; ``core_course_get_courses_by_field(field,
value)``. A WS failure is HTTP 200 with a JSON
``{"exception", "errorcode", "message"}`` body. Sample:
tests/fixtures/moodle-gradereport_user_get_grade_items.json.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import httpx
from pydantic import ValidationError

from gradesync import http
from gradesync.completion_time import MoodleCompletionStatus
from gradesync.errors import Permanent, Transient

# Moodle WS error codes that a later attempt may not see (the rest are configuration errors).
TRANSIENT_CODES = frozenset({"servicerequireslogin", "sitemaintenance"})


class MoodleError(Permanent):
    code = "moodle_error"


class MoodleWS:
    def __init__(
        self,
        base_url: str,
        token: str,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._token = token
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout_s, transport=transport
        )

    def call(self, function: str, **params: Any) -> Any:
        form = {"wstoken": self._token, "wsfunction": function, "moodlewsrestformat": "json"}
        form |= _flatten(params)
        response = http.request(self._http, "POST", "/webservice/rest/server.php", data=form)
        http.raise_for_status(response, f"moodle {function}")
        try:
            body = response.json()
        except ValueError as exc:
            raise Transient(
                f"moodle {function}: response is not JSON", code="moodle_bad_response"
            ) from exc
        if isinstance(body, dict) and "exception" in body:
            code = _errorcode(body.get("errorcode"))
            message = f"moodle {function}: {code}: {_printable(body.get('message', ''))}"[:300]
            if code in TRANSIENT_CODES:
                raise Transient(message, code=f"moodle_{code}")
            raise MoodleError(message, code=f"moodle_{code}")
        return body

    def course_total(self, course_id: str, user_id: str) -> dict[str, Any] | None:
        body = self.call("gradereport_user_get_grade_items", courseid=course_id, userid=user_id)
        for usergrade in body.get("usergrades", []):
            for item in usergrade.get("gradeitems", []):
                if item.get("itemtype") == "course":
                    return dict(item)
        return None

    def completion_status(self, course_id: str, user_id: str) -> MoodleCompletionStatus:
        function = "core_completion_get_course_completion_status"
        body = self.call(function, courseid=course_id, userid=user_id)
        try:
            return MoodleCompletionStatus.model_validate(
                body.get("completionstatus") if isinstance(body, dict) else None
            )
        except ValidationError as exc:
            # Which field, never the answer itself: it holds the learner's data.
            raise MoodleError(
                f"moodle {function}: unexpected answer: {http.field_problem(exc)}",
                code="moodle_unexpected_response",
            ) from exc

    def user_field(self, user_id: str, field: str) -> str | None:
        users = self.call("core_user_get_users_by_field", field="id", values=[user_id])
        value = users[0].get(field) if users else None
        return str(value) if value not in (None, "") else None

    def course_field(self, course_id: str, field: str) -> str | None:
        body = self.call("core_course_get_courses_by_field", field="id", value=course_id)
        courses = body.get("courses", [])
        value = courses[0].get(field) if courses else None
        return str(value) if value not in (None, "") else None


def _flatten(params: dict[str, Any]) -> dict[str, str]:
    """Moodle's REST form encoding: lists as ``name[0]=…``."""
    out: dict[str, str] = {}
    for name, value in params.items():
        if isinstance(value, list | tuple):
            for i, item in enumerate(value):
                out[f"{name}[{i}]"] = str(item)
        else:
            out[name] = str(value)
    return out


def grade_text(item: dict[str, Any], style: Literal["formatted", "dutch"]) -> str | None:
    """The course total as Coachview's result: Moodle's own formatting, or 1–10 (Dutch)."""
    if style == "formatted":
        text = item.get("gradeformatted")
        return str(text).strip() if text not in (None, "", "-") else None
    raw, low, high = item.get("graderaw"), item.get("grademin") or 0, item.get("grademax")
    if raw is None or not high or high == low:
        return None
    fraction = (Decimal(str(raw)) - Decimal(str(low))) / (Decimal(str(high)) - Decimal(str(low)))
    dutch = Decimal(1) + Decimal(9) * min(max(fraction, Decimal(0)), Decimal(1))
    return str(dutch.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


# Moodle's error codes are identifiers (``invalidtoken``, ``requireloginerror``); the code ends
# in records, logs and terminal tables, so anything else from a site is not passed on.
_ERRORCODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _errorcode(value: object) -> str:
    if value is None or value == "":
        return "unknown"
    text = str(value)
    return text if _ERRORCODE.fullmatch(text) else "unreadable_errorcode"


def _printable(value: object) -> str:
    """Moodle's message without control characters (escape sequences, new lines)."""
    return "".join(c if c.isprintable() else " " for c in str(value))
