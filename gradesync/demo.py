"""``gradesync demo``: a few completions from every LMS through the running stack's ingress,
then a table of what Coachview (the simulator) ended up with."""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from gradesync.ledger import Ledger
from gradesync.procs import wait_until
from gradesync.settings import Settings, redacted_url
from gradesync.sources import DEFAULT_INSTANCE, InstallationUnknown
from gradesync.stack import DEMO_SEED
from producers.signatures import anewspring_signature, standard_signature

NOW = "2026-11-20T14:03:00+01:00"
# How long the samples may take through the worker before the demo says what still waits.
SETTLE_S = 60

# (label, path, body, expected) — learners and courses from coachview_sim/demo-seed.json.
SAMPLES: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "canonical (Moodle) · Anna",
        "/events",
        {
            "source": "moodle",
            "event_id": "demo-1",
            "person_id": "57",
            "course_id": "12",
            "grade": "8.5",
            "completed_at": NOW,
        },
        "delivered",
    ),
    (
        "Moodle webhook · Daan",
        "/events/moodle",
        {
            "eventname": "\\core\\event\\course_completed",
            "objectid": 901,
            "courseid": "12",
            "relateduserid": "60",
            "userid": "2",
            "timecreated": 1795179780,
            "host": "lms.example.nl",
        },
        "delivered without a grade: no MOODLE_URL, so the stack set "
        "MOODLE_GRADE_POLICY=completion_only",
    ),
    (
        "xAPI statement · Eva",
        "/events/xapi",
        {
            "actor": {"account": {"homePage": "https://lrs.example.nl", "name": "61"}},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
            # A Moodle log store's course object: the default course pattern takes id=12.
            "object": {"id": "https://lms.example.nl/course/view.php?id=12"},
            # 7 on 1..10 is 7.0 on the Dutch scale (gradesync/grades.py).
            "result": {"score": {"raw": 7, "min": 1, "max": 10}},
            "timestamp": "2026-11-20T13:03:00Z",
        },
        "delivered",
    ),
    (
        "ILIAS push · Fenna",
        "/events/ilias",
        {
            "obj_id": 312,
            "usr_id": 62,
            "status": 2,
            "old_status": 1,
            "percentage": 100,
            "mark": "7,5",
            "timestamp": "2026-11-20 10:22:11",
        },
        "delivered",
    ),
    (
        "aNewSpring webhook · Gijs",
        "/events/anewspring",
        {
            "event": "completed",
            "created": NOW,
            "id": "demo-5",
            "userID": "63",
            "courseID": "312",
            "grade": "9",
            "completeDate": NOW,
        },
        "delivered",
    ),
    (
        "canonical · Bram (has 6.0)",
        "/events",
        {
            "source": "moodle",
            "event_id": "demo-6",
            "person_id": "58",
            "course_id": "12",
            "grade": "9.5",
            "completed_at": NOW,
        },
        "delivered, result kept",
    ),
    (
        "canonical · unknown learner",
        "/events",
        {
            "source": "moodle",
            "event_id": "demo-7",
            "person_id": "4242",
            "course_id": "12",
            "grade": "7",
            "completed_at": NOW,
        },
        "unresolved (daily retry)",
    ),
]


def _target(settings: Settings, path: str, data: dict[str, Any]) -> str | None:
    """The installation a sample needs (``kind/instance``) when the sources lack it, else
    ``None``: native samples go to each kind's default route, canonical ones name their own."""
    canonical = path == "/events"
    kind = str(data["source"]) if canonical else path.rsplit("/", 1)[-1]
    instance = str(data.get("source_instance", DEFAULT_INSTANCE)) if canonical else None
    try:
        settings.sources.find(kind, instance)
    except InstallationUnknown:
        return f"{kind}/{instance or DEFAULT_INSTANCE}"
    return None


def _secret(settings: Settings, path: str) -> str | None:
    """The canonical route's secret, or that of the installation a kind's route serves."""
    if path == "/events":
        return settings.webhook_secret("canonical")
    return settings.sources.find(path.rsplit("/", 1)[-1]).webhook_secret()


def _headers(settings: Settings, path: str, body: bytes, n: int) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    secret = _secret(settings, path)
    if secret is None:
        return headers  # the stack runs with GRADESYNC_INSECURE_DEV=1 when no secrets are set
    if path == "/events/anewspring":
        return headers | {"X-WebHook-Signature": anewspring_signature(secret, body)}
    if path == "/events/moodle":
        return headers  # the token goes in the body
    ts = str(int(time.time()))
    msg_id = f"demo-{n}-{ts}"
    return headers | {
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": standard_signature(secret, msg_id, ts, body),
    }


def _post(
    api: httpx.Client, settings: Settings, n: int, path: str, data: dict[str, Any]
) -> tuple[str | None, str]:
    """One sample to the ingress: the record key (``None``: not recorded) and what it said."""
    if path == "/events/moodle" and (token := _secret(settings, path)):
        data = {**data, "token": token}
    body = json.dumps(data).encode()
    response = api.post(path, content=body, headers=_headers(settings, path, body, n))
    try:
        answer = response.json() if response.status_code < 300 else {}
    except ValueError:
        answer = {}
    said = f"HTTP {response.status_code}"
    if response.status_code == 200:  # the ingress's "already recorded" (202: recorded now)
        said += " (already recorded: an earlier demo)"
    return answer.get("key"), said


def run(api_url: str, sim_url: str, ledger: Ledger, settings: Settings, console: Console) -> int:
    """0: the samples went through (see the table); 1: some never settled; 2: no ingress or
    simulator answered at these addresses."""
    keys: list[tuple[str, str | None, str, str]] = []
    missing: set[str] = set()
    try:
        with httpx.Client(base_url=api_url, timeout=10) as api:
            for n, (label, path, data, expected) in enumerate(SAMPLES):
                if (needed := _target(settings, path, data)) is not None:
                    missing.add(needed)
                    keys.append((label, None, f"skipped: no {needed}", expected))
                    continue
                key, said = _post(api, settings, n, path, data)
                keys.append((label, key, said, expected))
    except httpx.HTTPError as exc:
        console.print(
            f"the ingress at {api_url} did not answer ({type(exc).__name__}): is "
            "`gradesync stack up` running? (its address: GRADESYNC_API_URL or --api-url)"
        )
        return 2
    if missing:
        console.print(
            f"The sources name no {', '.join(sorted(missing))}: the demo sends to each kind's "
            "default route (/events/{kind}) and names these in its canonical events; run it "
            "against a stack whose sources have them (`gradesync stack up` without "
            "GRADESYNC_SOURCES does)"
        )

    def waiting() -> list[str]:
        recs = [(label, ledger.get(k)) for label, k, _, _ in keys if k]
        return [label for label, r in recs if r is None or r.state in ("queued", "in_progress")]

    try:
        wait_until(lambda: not waiting(), timeout=SETTLE_S, interval=0.3)
    except TimeoutError:
        console.print(
            f"still waiting after {SETTLE_S} s: {', '.join(waiting())}. Is a worker running "
            f"on this Redis ({redacted_url(settings.redis_url)})? `gradesync stack up` starts "
            "one; its log is .local/worker.log"
        )
        return 1
    try:
        state = httpx.get(f"{sim_url}/_sim/state", timeout=10).json()
    except (httpx.HTTPError, ValueError) as exc:
        console.print(f"the simulator at {sim_url} did not answer ({type(exc).__name__})")
        return 2
    table = Table("completion", "ingress", "ledger state", "Coachview result", "note", "expected")
    for label, key, http_status, expected in keys:
        rec = ledger.get(key) if key else None
        result, note = "", ""
        if rec is not None:
            note = (rec.outcome or {}).get("code", "") or (
                rec.last_error.code if rec.last_error else ""
            )
            row = _row(state, rec.coachview_person_id, rec.coachview_course_id)
            if rec.state == "delivered":
                result = _result(row)
        table.add_row(label, http_status, rec.state if rec else "-", result, note, expected)
    console.print(table)
    # Those not delivered are what an administrator fixes: the console groups them.
    console.print(
        f"Fix and retry what is stuck in the console: {api_url.rstrip('/')}/console/attention "
        "(login: printed by `gradesync stack up`, or GRADESYNC_CONSOLE_USERS)"
    )
    return 0


def _result(row: dict[str, Any] | None) -> str:
    """What the simulator holds for a delivered record; a simulator started after the delivery
    (a second `stack up` keeps the ledger) holds none of it."""
    if row is None or row.get("approvalDate") is None:
        return "not in the simulator (it restarted): `stack up --fresh`"
    return f"{row['result'] or '—'} (approved {row['approvalDate']})"


@lru_cache(maxsize=1)
def _demo_seed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DEMO_SEED.read_text())
    return data


def _row(state: dict[str, Any], person: str, course: str) -> dict[str, Any] | None:
    # The simulator's state names Coachview ids; the demo seed's external ids are LMS ids.
    seed = _demo_seed()
    pid = next((p["id"] for p in seed["persons"] if p.get("externId") == person), None)
    comps = {
        c["id"]
        for t in seed["trainings"]
        for c in t["components"]
        if c.get("elearningCourseId") == course
    }
    for row in state["enrolmentComponents"]:
        if row["personId"] == pid and row["componentId"] in comps:
            return dict(row)
    return None
