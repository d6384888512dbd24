"""aNewSpring REST API, for a completion whose webhook lacks the grade.

``https://<domain>/api/...`` with an ``X-API-Key`` header (aNewSpring's API documentation).
The result resource path and its fields (``completed``, ``completeDate``, ``grade``,
``passed``) are kept in :mod:`producers.anewspring` and are to be confirmed with aNewSpring.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from gradesync import http
from producers.anewspring import MAPPING, RESULT_PATH, pick


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
        http.raise_for_status(response, "anewspring result")
        body: dict[str, Any] = response.json()
        return body

    def grade(self, user_id: str, course_id: str) -> str | None:
        value = pick(self.result(user_id, course_id), MAPPING.grade)
        return None if value in (None, "") else str(value)
