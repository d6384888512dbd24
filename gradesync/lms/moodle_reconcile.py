"""What reconciliation asks Moodle (issue 26), with the fewest web service calls we found:

1. ``core_course_get_courses_by_field`` once per run: with ``field=ids`` (course_field ``id``)
   or no field (every course, for ``idnumber``/``shortname``), mapping Coachview's e-learning
   course ids back to Moodle's (``course/externallib.php``).
2. ``core_enrol_get_enrolled_users`` once per course, with ``withcapability =
   moodle/course:isincompletionreports`` — exactly the learners Moodle tracks completion for
   (``lib/completionlib.php`` ``is_tracked_user``), teachers left out — and ``userfields=id``.
   ``onlyactive`` is left unset, so learners whose enrolment was suspended or ended are listed
   too (``enrol/externallib.php`` ``get_enrolled_users``).
3. ``core_completion_get_course_completion_status`` per learner the ledger does not hold yet
   (``completion/classes/external.php``). Moodle has no web service function listing a course's
   completions; this one needs an *active* enrolment (``is_tracked_user`` asks ``is_enrolled(…,
   onlyactive=true)``) and answers ``usernotenroled`` otherwise: such a learner is reported as
   having left (see README, "Reconciliation").

``calls`` counts every request, which the run keeps under its cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from gradesync.completion_time import MoodleCompletionStatus
from gradesync.lms.moodle import MoodleError, MoodleWS

TRACKED = "moodle/course:isincompletionreports"
# Moodle's answers for a learner it will not report on, and for a course without criteria.
NOT_ENROLLED = "moodle_usernotenroled"
NO_CRITERIA = "moodle_nocriteriaset"
NO_CRITERIA_SET = MoodleCompletionStatus(completed=False, aggregation=1, completions=[])


class MoodleReconciler:
    def __init__(self, ws: MoodleWS, course_field: Literal["id", "idnumber", "shortname"]) -> None:
        self.ws = ws
        self.course_field = course_field
        self.calls = 0

    def _call(self, function: str, **params: Any) -> Any:
        self.calls += 1
        return self.ws.call(function, **params)

    def course_ids(self, codes: Sequence[str]) -> dict[str, str]:
        wanted = {c for c in codes if c}
        if self.course_field == "id":
            numeric = sorted(c for c in wanted if c.isascii() and c.isdigit())
            if not numeric:
                return {}
            body = self._call(
                "core_course_get_courses_by_field", field="ids", value=",".join(numeric)
            )
        else:
            body = self._call("core_course_get_courses_by_field")
        found: dict[str, str] = {}
        for course in _courses(body):
            code = str(course.get(self.course_field) or "")
            if code in wanted:
                found[code] = _moodle_id(course.get("id"), "courses[].id")
        return found

    def learners(self, course_id: str) -> list[str]:
        body = self._call(
            "core_enrol_get_enrolled_users",
            courseid=course_id,
            **{
                "options[0][name]": "withcapability",
                "options[0][value]": TRACKED,
                "options[1][name]": "userfields",
                "options[1][value]": "id",
            },
        )
        if not isinstance(body, list):
            raise MoodleError(
                "moodle core_enrol_get_enrolled_users: expected a list of users",
                code="moodle_unexpected_response",
            )
        return [
            _moodle_id(u.get("id") if isinstance(u, dict) else None, f"users[{n}].id")
            for n, u in enumerate(body)
        ]

    def status(self, course_id: str, user_id: str) -> MoodleCompletionStatus | None:
        self.calls += 1
        try:
            return self.ws.completion_status(course_id, user_id)
        except MoodleError as exc:
            if exc.code == NOT_ENROLLED:
                return None
            if exc.code == NO_CRITERIA:
                return NO_CRITERIA_SET  # the course's answer, the same for every learner
            raise


def _courses(body: Any) -> list[dict[str, Any]]:
    courses = body.get("courses") if isinstance(body, dict) else None
    if not isinstance(courses, list):
        raise MoodleError(
            "moodle core_course_get_courses_by_field: expected courses[]",
            code="moodle_unexpected_response",
        )
    return [c for c in courses if isinstance(c, dict)]


def _moodle_id(value: Any, field: str) -> str:
    """A Moodle record id (PARAM_INT, positive): it becomes part of a completion key, a Redis
    key and the console's text, so anything else is refused, naming the field, never the value
    (it may hold a learner's data)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and int(value) > 0:
        return str(int(value))
    raise MoodleError(
        f"moodle: {field} is not a Moodle id (a positive whole number)",
        code="moodle_unexpected_response",
    )
