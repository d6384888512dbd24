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

import html
import re
import time
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from gradesync import grades, http
from gradesync.completion_time import MoodleCompletionStatus
from gradesync.errors import Permanent, Transient
from gradesync.grades import GradeFormat, Separator

# How long a user's id field (core_user_get_users_by_field) is reused: an administrator's
# correction shows within this.
USER_FIELD_TTL_S = 600.0
# Moodle WS error codes that a later attempt may not see (the rest are configuration errors).
TRANSIENT_CODES = frozenset({"servicerequireslogin", "sitemaintenance"})


class MoodleError(Permanent):
    code = "moodle_error"


class UserGrades(BaseModel):
    gradeitems: list[dict[str, Any]] = []


class GradeReport(BaseModel):
    """``gradereport_user_get_grade_items``' answer, as far as it is read: the items' own
    fields are judged by :func:`grade_text`."""

    usergrades: list[UserGrades] = []


class MoodleWS:
    def __init__(
        self,
        base_url: str,
        token: str,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._token = token
        self._users: dict[tuple[str, str], tuple[float, str | None]] = {}
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
        function = "gradereport_user_get_grade_items"
        body = self.call(function, courseid=course_id, userid=user_id)
        try:
            report = GradeReport.model_validate(body)
        except ValidationError as exc:
            # Which field, never the answer itself: it holds the learner's grades.
            raise MoodleError(
                f"moodle {function}: unexpected answer: {http.field_problem(exc)}",
                code="moodle_unexpected_response",
            ) from exc
        for usergrade in report.usergrades:
            for item in usergrade.gradeitems:
                if item.get("itemtype") == "course":
                    return item
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
        """A user's field (``None``: no such user, or the field is empty), cached for
        :data:`USER_FIELD_TTL_S`: every completion of a learner asks it again. Moodle leaves out
        a field the token may not see (``user_get_user_details``: ``idnumber`` needs
        ``moodle/user:viewalldetails`` or the site's identity fields) and an empty one alike: a
        :class:`MoodleError` ``moodle_field_not_readable`` naming both, never "not set"."""
        cached = self._users.get((user_id, field))
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        users = self.call("core_user_get_users_by_field", field="id", values=[user_id])
        found = users[0] if isinstance(users, list) and users else None
        if isinstance(found, dict) and field not in found:
            raise MoodleError(
                f"moodle core_user_get_users_by_field: {field} not shown: the learner has none "
                f"in Moodle, or the token's user needs moodle/user:viewalldetails (or {field} "
                "among the site's identity fields)",
                code="moodle_field_not_readable",
            )
        value = found.get(field) if isinstance(found, dict) else None
        text = str(value) if value not in (None, "") else None
        self._users[(user_id, field)] = (time.monotonic() + USER_FIELD_TTL_S, text)
        return text

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


def grade_text(item: dict[str, Any], style: GradeFormat, separator: Separator = ".") -> str | None:
    """The course total as Coachview's result, from the number Moodle stores; ``None`` when the
    total is not a grade yet (the caller's ``grade_unavailable``).

    ``gradeformatted`` is display text (moodle/moodle
    ``grade/report/user/classes/report/user.php``): a pass icon's HTML before the number when
    the course has a grade to pass, ``Error`` while the total needs an update, ``-`` when
    hidden, "Submitted on <date>" when hidden by date, letters or percentages by the course's
    display type. The flags beside it say which case it is, and ``graderaw`` is null in all but
    the last: none of those is ever written. ``formatted`` passes the display text on, only
    when an installation asks for it, with the icon's markup removed.
    """
    if any(item.get(flag) for flag in UNAVAILABLE_FLAGS):
        return None
    raw = grades.as_decimal(item.get("graderaw"))
    if raw is None:
        return None
    if style == "formatted":
        return display_text(item.get("gradeformatted"))
    low = grades.as_decimal(item.get("grademin", 0))
    high = grades.as_decimal(item.get("grademax"))
    if low is None or high is None:
        return None
    return grades.render(raw, low, high, style, separator)


def why_not_a_grade(item: dict[str, Any]) -> str:
    """Why :func:`grade_text` found no grade in this total, for the record: an operator must
    tell a total that will come (regrading, hidden) from one that will not (out of range)."""
    if flags := [flag for flag in UNAVAILABLE_FLAGS if item.get(flag)]:
        return f"the course total is marked {', '.join(flags)}"
    if grades.as_decimal(item.get("graderaw")) is None:
        return "the course total has no grade yet"
    # Moodle's $CFG->unlimitedgrades lets a total exceed its maximum; not clamped (grades.py).
    return "the course total's graderaw is outside grademin–grademax, or the range is missing"


# Beside ``gradeformatted`` (gradereport_user ``get_grade_items``): the total needs regrading
# ("Error"), is hidden ("-"), or is hidden until a date ("Submitted on …").
UNAVAILABLE_FLAGS = ("gradeneedsupdate", "gradeishidden", "gradehiddenbydate")
# What Moodle shows instead of a grade (lang/en/moodle.php ``error``; the hidden and empty cells).
NOT_A_GRADE = frozenset({"", "-", "error", "&nbsp;"})
_TAG = re.compile(r"<[^>]*>")


def display_text(value: object) -> str | None:
    """Moodle's display text without its icon markup, or ``None`` when it shows no grade."""
    if not isinstance(value, str):
        return None
    text = html.unescape(_TAG.sub("", value)).strip()
    return None if text.lower() in NOT_A_GRADE else text


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
