"""aNewSpring: where its webhook and API put each field, and the REST API client that fetches
a grade a webhook lacks.

``https://<domain>/api/...`` with an ``X-API-Key`` header (aNewSpring's API documentation). The
API is RPC style: a learner's results are ``GET /api/getResults/{userID}?asStudent=true`` →
``{"courses": [{"id", "completed", "completeDate", "grade", "passed", …}]}`` — the public
clients telartis/anewspring ``anewspring.php`` (``getResults``: ``json:courses:array``, 404 when
the user does not exist or is not subscribed) and kroutled/ansapi ``models.go`` (the course
fields, ``grade`` a string). Sample: tests/conformance/anewspring/getResults.json.
GUESSES, to be confirmed with aNewSpring: the completion event's body fields (:data:`FIELDS`)
and the range of a course's ``grade`` (read as the Dutch 1–10 scale, :data:`GRADE_RANGE`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict

from gradesync import grades, http
from gradesync.errors import UnexpectedResponse
from gradesync.grades import GradeFormat, Separator


class FieldPaths(BaseModel):
    """Where each canonical field is found in an aNewSpring body (dotted paths, first found)."""

    model_config = ConfigDict(frozen=True)
    person_id: tuple[str, ...] = ("userID", "data.userID", "user.userID")
    course_id: tuple[str, ...] = ("courseID", "data.courseID", "course.courseID")
    grade: tuple[str, ...] = ("grade", "data.grade", "result.grade")
    completed_at: tuple[str, ...] = ("completeDate", "data.completeDate", "created")
    event_id: tuple[str, ...] = ("id", "eventID", "data.id")


FIELDS = FieldPaths()
# A learner's results in every course they are subscribed to (one call per completion).
RESULTS_PATH = "/api/getResults/{user}"
# aNewSpring shows a course grade as a Dutch mark; nothing public names its range.
GRADE_RANGE = (Decimal(1), Decimal(10))


def pick(data: dict[str, Any], paths: tuple[str, ...]) -> Any:
    for path in paths:
        node: Any = data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                node = None
                break
            node = node[part]
        if node is not None:
            return node
    return None


class ANewSpringAPI:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout_s,
            headers={"X-API-Key": api_key, "Accept": "application/json"},
            transport=transport,
        )

    def result(self, user_id: str, course_id: str) -> dict[str, Any] | None:
        """The course's entry in the learner's results; ``None`` when aNewSpring has none (its
        404: no such user, or not subscribed — yet, or any more)."""
        path = RESULTS_PATH.format(user=quote(user_id, safe=""))
        response = http.request(self._http, "GET", path, params={"asStudent": "true"})
        if response.status_code == 404:
            return None
        body = http.json_body(response, "anewspring getResults", dict)
        courses = body.get("courses")
        if not isinstance(courses, list):
            raise UnexpectedResponse("anewspring getResults: field 'courses' is not a list")
        for course in courses:
            if isinstance(course, dict) and course_id in (str(course.get("id")), course.get("uid")):
                return course
        return None

    def grade(
        self, user_id: str, course_id: str, style: GradeFormat = "raw", separator: Separator = "."
    ) -> str | None:
        """The course's grade as the installation writes it, or ``None`` (not graded yet)."""
        found = self.result(user_id, course_id)
        value = None if found is None else found.get("grade")
        if value in (None, ""):
            return None
        if style == "formatted":
            return str(value).strip()
        number = grades.as_decimal(str(value).replace(",", "."))
        return None if number is None else grades.render(number, *GRADE_RANGE, style, separator)
