"""aNewSpring: where its webhook and API put each field, and the REST API client that fetches
a grade a webhook lacks.

``https://<domain>/api/...`` with an ``X-API-Key`` header (aNewSpring's API documentation).
GUESSES, to be confirmed with aNewSpring: the completion event's body fields and the result
resource (:data:`FIELDS`, :data:`RESULT_PATH`); the defaults are the names aNewSpring's REST API
uses (``completeDate``, ``grade``; users and courses by external ``userID``/``courseID``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict

from gradesync import http


class FieldPaths(BaseModel):
    """Where each canonical field is found in an aNewSpring body (dotted paths, first found)."""

    model_config = ConfigDict(frozen=True)
    person_id: tuple[str, ...] = ("userID", "data.userID", "user.userID")
    course_id: tuple[str, ...] = ("courseID", "data.courseID", "course.courseID")
    grade: tuple[str, ...] = ("grade", "data.grade", "result.grade")
    completed_at: tuple[str, ...] = ("completeDate", "data.completeDate", "created")
    event_id: tuple[str, ...] = ("id", "eventID", "data.id")


FIELDS = FieldPaths()
# The REST API's result resource for one learner in one course (enrichment).
RESULT_PATH = "/api/v2/users/{user}/courses/{course}/result"


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

    def result(self, user_id: str, course_id: str) -> dict[str, Any]:
        path = RESULT_PATH.format(user=quote(user_id, safe=""), course=quote(course_id, safe=""))
        response = http.request(self._http, "GET", path)
        return http.json_body(response, "anewspring result", dict)

    def grade(self, user_id: str, course_id: str) -> str | None:
        value = pick(self.result(user_id, course_id), FIELDS.grade)
        return None if value in (None, "") else str(value)
