"""A fake LMS API for integration tests: Moodle web services, aNewSpring's getResults and
ILIAS SOAP, answering in each LMS's real shapes (see tests/fixtures and tests/conformance:
``/_fake/moodle_raw`` serves a corpus file literally). Several installations are
several processes on their own ports, each with its own credentials (``--moodle-token``,
``--anewspring-key``), so a test sees which installation's API a worker asked, with what."""

from __future__ import annotations

import argparse
import re
from html import escape
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

MOODLE_TOKEN = "fake-moodle-ws-token"
ANEWSPRING_KEY = "fake-anewspring-key"
SINCE = re.compile(r"<timestamp[^>]*>([^<]*)</timestamp>")


def create_app(moodle_token: str = MOODLE_TOKEN, anewspring_key: str = ANEWSPRING_KEY) -> FastAPI:
    app = FastAPI()
    state: dict[str, Any] = {
        "moodle": {},
        "moodle_raw": {},
        "anewspring": {},
        "ilias_lp": "<LPData/>",
        "calls": [],
        "ilias_since": [],
    }

    @app.post("/_fake/moodle")
    async def set_moodle(request: Request) -> dict[str, str]:
        """{"<course>/<user>": {"graderaw": 8.5, "grademax": 10, "gradeformatted": "8,50",
        "completed": true, "aggregation": 1, "criteria": [1795128000, null],
        "idnumber": "...", "courseidnumber": "..."}}``: ``criteria`` are the completed
        criteria's ``timecompleted`` (none: no criteria rows); a later POST for the same key
        replaces its entry, so a test can let the gradebook catch up."""
        state["moodle"].update(await request.json())
        return {"status": "ok"}

    @app.post("/_fake/moodle_raw")
    async def set_moodle_raw(request: Request) -> dict[str, str]:
        """``{"<wsfunction>/<course>/<user>": <the answer, literally>}`` (``<course>`` empty for
        user functions): a corpus file taken from Moodle's code is served as it is, errors
        (``{"exception", "errorcode", "message"}``) included."""
        state["moodle_raw"].update(await request.json())
        return {"status": "ok"}

    @app.post("/_fake/anewspring")
    async def set_anewspring(request: Request) -> dict[str, str]:
        state["anewspring"].update(await request.json())
        return {"status": "ok"}

    @app.post("/_fake/ilias")
    async def set_ilias(request: Request) -> dict[str, str]:
        state["ilias_lp"] = (await request.body()).decode()
        return {"status": "ok"}

    @app.get("/_fake/calls")
    def calls() -> list[str]:
        return list(state["calls"])

    @app.get("/_fake/ilias_since")
    def ilias_since() -> list[str]:
        """The ``timestamp`` of each getLearningProgressChanges asked (the poller's cursor)."""
        return list(state["ilias_since"])

    @app.post("/webservice/rest/server.php")
    async def moodle(request: Request) -> JSONResponse:
        form = dict(await request.form())
        fn = str(form.get("wsfunction"))
        state["calls"].append(f"moodle:{fn}")
        if form.get("wstoken") != moodle_token:
            return JSONResponse(
                {
                    "exception": "moodle_exception",
                    "errorcode": "invalidtoken",
                    "message": "Invalid token - token not found",
                }
            )
        user = str(form.get("userid") or form.get("values[0]") or "")
        course = str(form.get("courseid") or form.get("value") or "")
        if (literal := state["moodle_raw"].get(f"{fn}/{course}/{user}")) is not None:
            return JSONResponse(literal)
        if fn == "gradereport_user_get_grade_items":
            entry = state["moodle"].get(f"{course}/{user}", {})
            item = {
                "itemtype": "course",
                "graderaw": entry.get("graderaw"),
                "grademin": 0,
                "grademax": entry.get("grademax", 10),
                "gradeformatted": entry.get("gradeformatted", "-"),
            }
            return JSONResponse(
                {
                    "usergrades": [
                        {
                            "courseid": course,
                            "userid": user,
                            "gradeitems": [{"itemtype": "mod", "graderaw": 1}, item],
                        }
                    ],
                    "warnings": [],
                }
            )
        if fn == "core_completion_get_course_completion_status":
            entry = state["moodle"].get(f"{course}/{user}", {})
            return JSONResponse(
                {
                    "completionstatus": {
                        "completed": entry.get("completed", False),
                        "aggregation": entry.get("aggregation", 1),
                        "completions": [
                            _criterion(n, t) for n, t in enumerate(entry.get("criteria", []))
                        ],
                    },
                    "warnings": [],
                }
            )
        if fn == "core_user_get_users_by_field":
            # A learner's ID number is their user id unless the test names another (Coachview's
            # provisioning writes the ExternId there; the seeds' externIds are the user ids);
            # ``"idnumber": null`` leaves it out, as Moodle does for a token that may not see it.
            found = [v for k, v in state["moodle"].items() if k.endswith(f"/{user}")]
            if not found:
                return JSONResponse([])
            shown: dict[str, Any] = {"id": int(user)}
            if (idnumber := found[0].get("idnumber", user)) is not None:
                shown["idnumber"] = idnumber
            return JSONResponse([shown])
        if fn == "core_webservice_get_site_info":
            functions = [
                "gradereport_user_get_grade_items",
                "core_completion_get_course_completion_status",
                "core_user_get_users_by_field",
                "core_course_get_courses_by_field",
            ]
            return JSONResponse(
                {
                    "sitename": "Fake Moodle",
                    "userid": 2,
                    "userissiteadmin": True,  # sees learners' ID numbers
                    "functions": [{"name": f} for f in functions],
                }
            )
        if fn == "core_course_get_courses_by_field":
            found = [v for k, v in state["moodle"].items() if k.startswith(f"{course}/")]
            idn = found[0].get("courseidnumber", "") if found else ""
            return JSONResponse({"courses": [{"id": int(course), "idnumber": idn}], "warnings": []})
        return JSONResponse(
            {
                "exception": "invalid_parameter_exception",
                "errorcode": "invalidrecord",
                "message": fn,
            }
        )

    @app.get("/api/getResults/{user}")
    def anewspring(user: str, request: Request) -> JSONResponse:
        """``{"courses": [...]}``, one entry per ``<course>/<user>`` set for this learner (its
        ``id`` the course's); 404 for a learner with none, as aNewSpring answers."""
        state["calls"].append("anewspring:getResults")
        if request.headers.get("x-api-key") != anewspring_key:
            return JSONResponse({"error": "unauthorized"}, 401)
        courses = [
            {"id": key.split("/")[0], **entry}
            for key, entry in state["anewspring"].items()
            if key.endswith(f"/{user}")
        ]
        return JSONResponse({"courses": courses}, 200 if courses else 404)

    @app.post("/webservice/soap/server.php")
    async def ilias(request: Request) -> Response:
        body = (await request.body()).decode()
        method = request.headers.get("soapaction", "").split("#")[-1].strip('"')
        state["calls"].append(f"ilias:{method}")
        if method == "getLearningProgressChanges" and (since := SINCE.search(body)):
            state["ilias_since"].append(since.group(1))
        field, value = {
            "login": ("sid", "fake-sid::default"),
            "logout": ("success", "true"),
            "getLearningProgressChanges": ("lp_data", escape(state["ilias_lp"])),
        }.get(method, ("", ""))
        if not field or ("fake-sid" not in body and method != "login"):
            fault = (
                "<SOAP-ENV:Fault><faultcode>Client</faultcode>"
                "<faultstring>Session not valid</faultstring></SOAP-ENV:Fault>"
            )
            return Response(_envelope(fault), 500, media_type="text/xml")
        reply = (
            f'<ns1:{method}Response><{field} xsi:type="xsd:string">{value}</{field}>'
            f"</ns1:{method}Response>"
        )
        return Response(_envelope(reply), media_type="text/xml")

    return app


def _criterion(n: int, timecompleted: int | None) -> dict[str, Any]:
    """One completed criterion as ``core_completion_get_course_completion_status`` shows it
    (moodle/moodle completion/classes/external.php); activity criteria, type 4."""
    return {
        "type": 4,
        "title": "Activity completion",
        "status": "Yes",
        "complete": True,
        "timecompleted": timecompleted,
        "details": {
            "type": "Activity completion",
            "criteria": f"Activity {n + 1}",
            "requirement": "Marking complete",
            "status": "Yes",
        },
    }


def _envelope(inner: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope '
        'xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xmlns:ns1="urn:ilUserAdministration"><SOAP-ENV:Body>{inner}</SOAP-ENV:Body>'
        "</SOAP-ENV:Envelope>"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--moodle-token", default=MOODLE_TOKEN)
    parser.add_argument("--anewspring-key", default=ANEWSPRING_KEY)
    args = parser.parse_args()
    app = create_app(args.moodle_token, args.anewspring_key)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
