"""A fake Moodle site for reconciliation (issue 26): courses, enrolments (active, suspended or
removed) and completions, answering the web service functions reconciliation and the worker call
in Moodle's own shapes (tests/fixtures/moodle-reconcile-shapes.json,
moodle-core_completion_get_course_completion_status.json,
moodle-gradereport_user_get_grade_items.json), and sending the ``local_webhooks`` body once per
completion (tests/fixtures/moodle-local_webhooks-course_completed.json) — never again, as that
plugin never resends.

:class:`Site` is the model (used in-process by the benchmark through :func:`transport`); run as
a module it is a process: ``python -m tests.fakes.moodle_site --port N``.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from fastapi import FastAPI, Request

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SHAPES = json.loads((FIXTURES / "moodle-reconcile-shapes.json").read_text())
STATUS = json.loads(
    (FIXTURES / "moodle-core_completion_get_course_completion_status.json").read_text()
)
GRADES = json.loads((FIXTURES / "moodle-gradereport_user_get_grade_items.json").read_text())
WEBHOOK = json.loads((FIXTURES / "moodle-local_webhooks-course_completed.json").read_text())
TOKEN = "fake-moodle-ws-token"


class Site:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.courses: dict[int, dict[str, Any]] = {}
        # course → user → "active" | "suspended" (removed enrolments are absent).
        self.enrolments: dict[int, dict[int, str]] = {}
        self.completed: dict[tuple[int, int], int] = {}
        self.teachers: set[tuple[int, int]] = set()
        self.calls: Counter[str] = Counter()
        self._completion_ids = 0

    # -- the site's data -----------------------------------------------------------------------

    def add_course(
        self, course_id: int, idnumber: str, learners: list[int], teachers: Sequence[int] = ()
    ) -> None:
        """Teachers are enrolled but hold no ``moodle/course:isincompletionreports``: Moodle
        tracks no completion for them (``is_tracked_user`` is false)."""
        self.courses[course_id] = {"id": course_id, "idnumber": idnumber, "shortname": idnumber}
        self.enrolments[course_id] = dict.fromkeys(learners, "active")
        self.enrolments[course_id].update(dict.fromkeys(teachers, "active"))
        self.teachers.update((course_id, t) for t in teachers)

    def complete(self, course_id: int, user_id: int, at: int) -> dict[str, Any]:
        """Moodle's completion cron marks the course complete at ``at`` (the criterion's time)
        and raises ``course_completed``: the ``local_webhooks`` body it posts, returned."""
        self.completed[(course_id, user_id)] = at
        self._completion_ids += 1
        body: dict[str, Any] = copy.deepcopy(WEBHOOK)
        body.update(
            objectid=self._completion_ids,
            courseid=str(course_id),
            contextinstanceid=str(course_id),
            relateduserid=str(user_id),
            other={"relateduserid": user_id},
            timecreated=at + 60,  # the cron raises the event after it stored the completion
        )
        return body

    def leave(self, course_id: int, user_id: int, how: str) -> None:
        """``suspend`` the enrolment, or ``remove`` it (Moodle keeps course_completions)."""
        if how == "suspend":
            self.enrolments[course_id][user_id] = "suspended"
        else:
            self.enrolments[course_id].pop(user_id, None)

    # -- web services --------------------------------------------------------------------------

    def answer(self, form: dict[str, str]) -> Any:
        fn = form.get("wsfunction", "")
        self.calls[fn] += 1
        if form.get("wstoken") != self.token:
            return {
                "exception": "moodle_exception",
                "errorcode": "invalidtoken",
                "message": "Invalid token - token not found",
            }
        handler = getattr(self, f"_ws_{fn}", None)
        if handler is None:
            return {
                "exception": "invalid_parameter_exception",
                "errorcode": "invalidrecord",
                "message": fn,
            }
        return handler(form)

    def _ws_core_course_get_courses_by_field(self, form: dict[str, str]) -> Any:
        field, value = form.get("field", ""), form.get("value", "")
        courses = list(self.courses.values())
        if field == "ids":
            wanted = {int(v) for v in value.split(",") if v}
            courses = [c for c in courses if c["id"] in wanted]
        elif field:
            courses = [c for c in courses if str(c.get(field)) == value]
        template = SHAPES["core_course_get_courses_by_field"]["response"]
        rows = [
            {**template["courses"][0], **c, "fullname": c["idnumber"], "displayname": c["idnumber"]}
            for c in courses
        ]
        return {"courses": rows, "warnings": []}

    def _ws_core_enrol_get_enrolled_users(self, form: dict[str, str]) -> Any:
        course = int(form["courseid"])
        options = _options(form)
        onlyactive = options.get("onlyactive") not in (None, "", "0")
        tracked_only = options.get("withcapability") == "moodle/course:isincompletionreports"
        users = sorted(
            u
            for u, status in self.enrolments.get(course, {}).items()
            if (status == "active" or not onlyactive)
            and not (tracked_only and (course, u) in self.teachers)
        )
        template = SHAPES["core_enrol_get_enrolled_users"]["response"][0]
        return [{**template, "id": u, "fullname": f"Learner {u}"} for u in users]

    def _ws_core_completion_get_course_completion_status(self, form: dict[str, str]) -> Any:
        course, user = int(form["courseid"]), int(form["userid"])
        tracked = (course, user) not in self.teachers
        if self.enrolments.get(course, {}).get(user) != "active" or not tracked:
            return copy.deepcopy(SHAPES["usernotenroled"]["response"])
        body = copy.deepcopy(STATUS)
        at = self.completed.get((course, user))
        status = body["completionstatus"]
        status["completed"] = at is not None
        for criterion in status["completions"]:
            criterion["complete"] = at is not None
            criterion["status"] = "Yes" if at is not None else "No"
            criterion["timecompleted"] = at
        return body

    def _ws_gradereport_user_get_grade_items(self, form: dict[str, str]) -> Any:
        body = copy.deepcopy(GRADES)
        grades = body["usergrades"][0]
        grades.update(courseid=int(form["courseid"]), userid=int(form["userid"]))
        return body

    def _ws_core_user_get_users_by_field(self, form: dict[str, str]) -> Any:
        user = int(form["values[0]"])
        return [{"id": user, "idnumber": str(user), "fullname": f"Learner {user}"}]

    def _ws_core_webservice_get_site_info(self, form: dict[str, str]) -> Any:
        names = [n.removeprefix("_ws_") for n in dir(self) if n.startswith("_ws_")]
        return {"sitename": "Fake Moodle", "functions": [{"name": n} for n in names]}


def _options(form: dict[str, str]) -> dict[str, str]:
    """``options[N][name]`` / ``options[N][value]`` pairs as a mapping."""
    out: dict[str, str] = {}
    n = 0
    while f"options[{n}][name]" in form:
        out[form[f"options[{n}][name]"]] = form.get(f"options[{n}][value]", "")
        n += 1
    return out


def transport(site: Site) -> httpx.MockTransport:
    """The site behind an httpx transport: MoodleWS talks to it in-process."""

    def handle(request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode()))
        return httpx.Response(200, json=site.answer(form))

    return httpx.MockTransport(handle)


def create_app(site: Site, delay_s: float = 0.0) -> FastAPI:
    """``delay_s``: each web service answer waits so long (a slow site, to kill a run mid-way)."""
    app = FastAPI()

    @app.post("/webservice/rest/server.php")
    async def ws(request: Request) -> Any:
        form = {k: str(v) for k, v in (await request.form()).items()}
        await asyncio.sleep(delay_s)
        return site.answer(form)

    @app.post("/_site/course")
    async def course(request: Request) -> dict[str, str]:
        data = await request.json()
        site.add_course(int(data["id"]), str(data["idnumber"]), [int(u) for u in data["learners"]])
        return {"status": "ok"}

    @app.post("/_site/complete")
    async def complete(request: Request) -> dict[str, Any]:
        """``{course, user, at, webhook?: URL}``: the webhook is posted once; if it cannot be
        delivered it is lost (local_webhooks only logs the answer)."""
        data = await request.json()
        body = site.complete(int(data["course"]), int(data["user"]), int(data["at"]))
        delivered = False
        if data.get("webhook"):
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    answer = await client.post(data["webhook"], json=body)
                delivered = answer.is_success
            except httpx.HTTPError:
                delivered = False
        return {"delivered": delivered, "webhook": body}

    @app.post("/_site/leave")
    async def leave(request: Request) -> dict[str, str]:
        data = await request.json()
        site.leave(int(data["course"]), int(data["user"]), str(data["how"]))
        return {"status": "ok"}

    @app.get("/_site/calls")
    def calls() -> dict[str, int]:
        return dict(site.calls)

    return app


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default=TOKEN)
    parser.add_argument("--delay-ms", type=int, default=0)
    args = parser.parse_args()
    uvicorn.run(
        create_app(Site(args.token), args.delay_ms / 1000),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
    )
