"""The xAPI Statement endpoint over real processes (issue 24): redis-server, the ingress, a
Celery worker and the Coachview simulator reading one sources file with four xAPI
installations (tests/conformance/corpus.py, plus one that maps accounts through a Moodle
installation served by the fake LMS). Every statement of the conformance corpus is played over
HTTP, as its emitter sends it, with what each must produce."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from celery import Celery

from gradesync.ledger import Ledger
from gradesync.procs import BIN, ROOT, Proc, free_port, start_redis, start_sim, wait_until
from gradesync.record import Record
from gradesync.settings import PER_KIND_VARIABLE
from tests.conformance.corpus import PASSWORDS, cases, entry, password_env

MOODLE_TOKEN = "site-moodle-ws-token"
METRICS_TOKEN = "xapi-metrics-token-for-tests"
VERSION = {"X-Experience-API-Version": "1.0.3"}
MAPPED_PASSWORD = "mapped-sender-password"


def sources(lms: str) -> dict[str, Any]:
    return {
        "installations": [
            *(entry(name) for name in PASSWORDS),
            {
                "kind": "moodle",
                "instance": "site",
                "secret_env": "SITE_HOOK",
                "api": {"url": lms, "credential_env": "SITE_WS_TOKEN"},
                "person_field": "idnumber",
            },
            {
                "kind": "xapi",
                "instance": "mapped",
                "moodle": "site",
                "basic_auth": {"username": "mapped-sender", "password_env": "MAPPED_PASSWORD"},
            },
        ]
    }


class XapiStack:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[str, Proc] = {}
        self.ports = {name: free_port() for name in ("redis", "sim", "api", "lms")}
        self.lms_url = f"http://127.0.0.1:{self.ports['lms']}"
        path = workdir / "sources.yaml"
        path.write_text(yaml.safe_dump(sources(self.lms_url), sort_keys=False))
        self.broker = f"redis://127.0.0.1:{self.ports['redis']}/0"
        self.env = {
            **{k: v for k, v in os.environ.items() if not PER_KIND_VARIABLE.fullmatch(k)},
            **{password_env(n): p for n, p in PASSWORDS.items()},
            "MAPPED_PASSWORD": MAPPED_PASSWORD,
            "SITE_HOOK": "site-moodle-webhook-token",
            "SITE_WS_TOKEN": MOODLE_TOKEN,
            "REDIS_URL": self.broker,
            "COACHVIEW_BASE_URL": f"http://127.0.0.1:{self.ports['sim']}",
            "GRADESYNC_SOURCES": str(path),
            "GRADESYNC_METRICS_TOKEN": METRICS_TOKEN,
        }
        self.redis = redis.Redis(port=self.ports["redis"])
        self.ledger = Ledger(self.redis)
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.ports['api']}", timeout=30)
        self.sim = httpx.Client(base_url=f"http://127.0.0.1:{self.ports['sim']}", timeout=10)
        self.lms = httpx.Client(base_url=self.lms_url, timeout=10)

    def start(self) -> None:
        self.procs["redis"] = start_redis(self.ports["redis"], self.workdir, self.env)
        self.procs["sim"] = start_sim(self.ports["sim"], self.workdir, self.env)
        lms_args = ["--port", str(self.ports["lms"]), "--moodle-token", MOODLE_TOKEN]
        self.procs["lms"] = Proc(
            "lms", [sys.executable, "-m", "tests.fakes.lms", *lms_args], self.workdir, self.env
        )
        self.procs["api"] = Proc(
            "api",
            [str(BIN / "gradesync"), "api", "--port", str(self.ports["api"])],
            self.workdir,
            self.env,
        )
        for url in (f"{self.lms_url}/_fake/calls", f"http://127.0.0.1:{self.ports['api']}/healthz"):
            wait_until(partial(lambda u: httpx.get(u).is_success, url), timeout=30)
        worker = Proc(
            "worker",
            [
                *(str(BIN / "celery"), "-A", "workers", "worker", "-n", "xapi@%h", "-c", "2"),
                *("--loglevel", "INFO", "--without-gossip", "--without-mingle"),
            ],
            self.workdir,
            self.env,
        )
        self.procs["worker"] = worker
        celery = Celery(broker=self.broker)
        node = f"xapi@{socket.gethostname()}"

        def answers() -> bool:
            assert worker.alive(), worker.log()[-3000:]
            return bool(celery.control.ping(destination=[node], timeout=0.5))

        wait_until(answers, timeout=60, interval=0.2)

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()

    # -- helpers -----------------------------------------------------------------------------

    def post(self, instance: str, body: Any, password: str | None = None, **headers: str) -> Any:
        user = "mapped-sender" if instance == "mapped" else f"{instance}-sender"
        secret = password or (MAPPED_PASSWORD if instance == "mapped" else PASSWORDS[instance])
        token = base64.b64encode(f"{user}:{secret}".encode()).decode()
        return self.api.post(
            f"/xapi/{instance}/statements",
            content=json.dumps(body).encode(),
            headers={
                "authorization": f"Basic {token}",
                "content-type": "application/json",
                **VERSION,
                **headers,
            },
        )

    def reset(self) -> None:
        """An empty Coachview and ledger (the statement ids taken too): each test starts from
        what its statements make, whatever ran before."""
        self.sim.post("/_sim/reset").raise_for_status()
        found = list(self.redis.scan_iter("gs:*"))
        if found:
            self.redis.delete(*found)

    def seed(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, int]]:
        """Each learner enrolled on a training whose e-learning component has the course:
        ``(enrolment, component)`` per pair. One Coachview person per learner id."""
        n = next(SEEDED)
        persons = {p: 3000 + 50 * n + i for i, p in enumerate(dict.fromkeys(p for p, _ in pairs))}
        courses = {c: 50 * n + i for i, c in enumerate(dict.fromkeys(c for _, c in pairs))}
        self.sim.post(
            "/_sim/seed",
            json={
                "persons": [
                    {"id": i, "externId": p, "firstName": "A", "lastName": "B"}
                    for p, i in persons.items()
                ],
                "trainings": [
                    {
                        "id": i,
                        "name": f"T{i}",
                        "components": [{"id": 9000 + i, "name": "E", "elearningCourseId": c}],
                    }
                    for c, i in courses.items()
                ],
                "enrolments": [
                    {"id": 7000 + 50 * n + k, "personId": persons[p], "trainingId": courses[c]}
                    for k, (p, c) in enumerate(pairs)
                ],
            },
        ).raise_for_status()
        return {(p, c): (7000 + 50 * n + k, 9000 + courses[c]) for k, (p, c) in enumerate(pairs)}

    def component(self, enrolment: int, component: int) -> dict[str, Any]:
        rows = self.sim.get("/_sim/state").raise_for_status().json()["enrolmentComponents"]
        return next(
            dict(r) for r in rows if (r["enrolmentId"], r["componentId"]) == (enrolment, component)
        )

    def record(self, instance: str, person: str, course: str) -> Record | None:
        from gradesync.event import CompletionKey

        key = CompletionKey(
            source="xapi", source_instance=instance, person_id=person, course_id=course
        )
        return self.ledger.get(key.id)

    def settle(self, instance: str, person: str, course: str) -> Record:
        def done() -> Record | None:
            rec = self.record(instance, person, course)
            return rec if rec is not None and rec.state not in ("queued", "in_progress") else None

        found: Record = wait_until(done, timeout=60)
        return found

    def counted(self, instance: str, outcome: str, reason: str = "") -> float:
        text = self.api.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}).text
        labels = f'installation="xapi/{re.escape(instance)}",outcome="{outcome}",reason="{reason}"'
        pattern = r"^gradesync_xapi_statements_total\{" + labels + r"\} ([0-9.e+]+)$"
        match = re.search(pattern, text, re.M)
        return float(match.group(1)) if match else 0.0

    def gradesync(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "gradesync"), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env=self.env,
        )


@pytest.fixture(scope="module")
def xapi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XapiStack]:
    s = XapiStack(tmp_path_factory.mktemp("xapi"))
    try:
        s.start()
        yield s
    finally:
        s.stop()


SEEDED = iter(range(1, 10_000))


# -- 4. the conformance corpus, played as its emitters send it -----------------------------------


@pytest.mark.parametrize(("name", "case"), cases(), ids=[n for n, _ in cases()])
def test_corpus_over_http(xapi: XapiStack, name: str, case: dict[str, Any]) -> None:
    xapi.reset()
    instance = case["installation"]
    expect = case["expect"]
    pairs = [
        (w["person_id"], w["course_id"])
        for w in expect
        if w["outcome"] in ("counted", "not_passed")
    ]
    seeded = xapi.seed(list(dict.fromkeys(pairs)))
    if any(w["outcome"] == "voiding" for w in expect):
        _a_completion_to_void(xapi)
    before = {
        w["reason"]: xapi.counted(instance, "ignored", w["reason"])
        for w in expect
        if w["outcome"] == "ignored"
    }
    response = xapi.post(instance, case["statements"])
    assert response.status_code == 200, (name, response.text)
    assert response.headers["x-experience-api-version"] == "1.0.3"
    assert len(response.json()) == len(case["statements"])
    for n, want in enumerate(expect):
        if want["outcome"] == "counted":
            rec = xapi.settle(instance, want["person_id"], want["course_id"])
            assert rec.state == "delivered", (name, n, rec.last_error)
            row = xapi.component(*seeded[want["person_id"], want["course_id"]])
            assert (row["passed"], row["completed"], row["approved"]) == (True, True, True)
            assert row["result"] == want["grade"], (name, n)
            if "completed_at_source" in want:
                assert rec.completed_at_source == want["completed_at_source"]
        elif want["outcome"] == "not_passed":
            kept = xapi.record(instance, want["person_id"], want["course_id"])
            assert kept is not None and kept.state == "not_passed", name
            row = xapi.component(*seeded[want["person_id"], want["course_id"]])
            assert not row["passed"] and not any(row["writes"].values()), name
        elif want["outcome"] == "voiding":
            voided = xapi.record("spec", "void.me@example.com", VOID_COURSE)
            assert voided is not None and voided.state == "withdrawn", name
        else:
            reason = want["reason"]
            assert xapi.counted(instance, "ignored", reason) >= before[reason] + 1, name


VOID_ID = "e05aa883-acaf-40ad-bf54-02c8ce485fb0"
VOID_COURSE = "http://example.adlnet.gov/xapi/example/voided-course"


def _a_completion_to_void(xapi: XapiStack) -> None:
    """The statement the specification's voiding example voids (its id is the spec's; the rest
    is ours). Coachview does not know the learner: it waits, unresolved, until voided."""
    completion = {
        "id": VOID_ID,
        "actor": {"objectType": "Agent", "mbox": "mailto:void.me@example.com"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"id": VOID_COURSE, "objectType": "Activity"},
        "timestamp": "2015-11-18T12:17:00+00:00",
    }
    assert xapi.post("spec", [completion]).status_code == 200
    rec = xapi.settle("spec", "void.me@example.com", VOID_COURSE)
    assert rec.state == "unresolved"


# -- 1. the endpoint: auth, version, resend, conflict, PUT, about ----------------------------------


def _logstore_batch() -> list[dict[str, Any]]:
    case = dict(cases())["moodle-logstore_xapi-course_completed.json"]
    activity = dict(cases())["moodle-logstore_xapi-course_module_completion.json"]
    return [*case["statements"], *activity["statements"]]


def test_endpoint_over_http(xapi: XapiStack) -> None:
    xapi.reset()
    batch = _logstore_batch()
    for statement in batch:  # another learner than the corpus test's
        statement["actor"]["account"]["name"] = "501"
    ((enrolment, component),) = xapi.seed([("501", "2")]).values()
    assert xapi.post("moodle", batch, password="wrong").status_code == 401
    refused = xapi.post("moodle", batch, **{"X-Experience-API-Version": "0.95"})
    assert refused.status_code == 400 and refused.headers["x-experience-api-version"] == "1.0.3"
    # One installation's password on another's route: refused.
    assert xapi.post("cmi5", batch, password=PASSWORDS["moodle"]).status_code == 401
    first = xapi.post("moodle", batch)
    assert first.status_code == 200, first.text
    rec = xapi.settle("moodle", "501", "2")
    assert rec.state == "delivered" and xapi.component(enrolment, component)["passed"]
    # The log store resends a batch it thinks failed: the same ids, nothing new.
    again = xapi.post("moodle", batch)
    assert (again.status_code, again.json()) == (200, first.json())
    assert xapi.ledger.history(rec.id)[-1]["what"] == "delivered"
    # The same id with other content: 409, nothing recorded.
    changed = copy.deepcopy(batch[0])
    changed["id"] = first.json()[0]
    changed["object"]["id"] = "http://www.example.org/course/view.php?id=3"
    assert xapi.post("moodle", [changed]).status_code == 409
    assert xapi.record("moodle", "501", "3") is None
    # PUT with statementId: 204.
    put_id = "7ccd3322-e1a5-411a-a67d-6a735c76f119"
    one = copy.deepcopy(batch[1])
    put = xapi.api.put(
        f"/xapi/moodle/statements?statementId={put_id}",
        content=json.dumps(one).encode(),
        headers={**xapi_auth("moodle"), **VERSION, "content-type": "application/json"},
    )
    assert put.status_code == 204 and put.headers["x-experience-api-version"] == "1.0.3"
    about = xapi.api.get("/xapi/moodle/about")
    assert about.json() == {"version": ["1.0.3"]}


def xapi_auth(instance: str) -> dict[str, str]:
    token = base64.b64encode(f"{instance}-sender:{PASSWORDS[instance]}".encode()).decode()
    return {"authorization": f"Basic {token}"}


# -- 2. what counts: not_passed, a later pass, voiding after delivery, cmi5's grade ---------------


def test_not_passed_then_passed_and_voiding_after_delivery(xapi: XapiStack) -> None:
    xapi.reset()
    case = dict(cases())["xapi-spec-cmi5-failed.json"]
    failed = copy.deepcopy(case["statements"][0])
    failed["actor"]["account"]["name"] = "cmi5-learner-2"
    ((enrolment, component),) = xapi.seed([("cmi5-learner-2", failed["object"]["id"])]).values()
    assert xapi.post("cmi5", [failed]).status_code == 200
    rec = xapi.record("cmi5", "cmi5-learner-2", failed["object"]["id"])
    assert rec is not None and rec.state == "not_passed"
    status = json.loads(xapi.gradesync("status", "--json").stdout)
    assert status["not_passed"] >= 1 and "withdrawn" in status
    passed = dict(cases())["cmi5-spec-9-au-and-course.json"]["statements"][0]
    passed = copy.deepcopy(passed)
    passed["actor"]["account"]["name"] = "cmi5-learner-2"
    assert xapi.post("cmi5", [passed]).status_code == 200
    rec = xapi.settle("cmi5", "cmi5-learner-2", failed["object"]["id"])
    assert rec.state == "delivered"
    assert xapi.component(enrolment, component)["result"] == "9.1"
    void = {
        "actor": {"objectType": "Agent", "mbox": "mailto:admin@example.adlnet.gov"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": passed["id"]},
    }
    assert xapi.post("cmi5", [void]).status_code == 200
    flagged = xapi.ledger.get(rec.id)
    assert flagged is not None and flagged.state == "delivered"
    assert flagged.outcome is not None and flagged.outcome["code"] == "voided_after_delivery"
    assert xapi.counted("cmi5", "voiding", "voided_after_delivery") >= 1  # to alert on
    assert xapi.component(enrolment, component)["passed"]  # Coachview's tick stays


# -- 3. who: an account mapped through a Moodle installation's web services -----------------------


def test_account_mapped_through_moodle(xapi: XapiStack) -> None:
    xapi.reset()
    statement = copy.deepcopy(
        dict(cases())["moodle-logstore_xapi-course_completed.json"]["statements"][0]
    )
    statement["actor"]["account"]["name"] = "77"
    xapi.lms.post("/_fake/moodle", json={"2/77": {"idnumber": "CV-77"}}).raise_for_status()
    ((enrolment, component),) = xapi.seed([("CV-77", "2")]).values()
    assert xapi.post("mapped", [statement]).status_code == 200
    rec = xapi.settle("mapped", "77", "2")
    assert rec.state == "delivered" and rec.match_person_id == "CV-77", rec.last_error
    assert xapi.component(enrolment, component)["completed"]
    assert "moodle:core_user_get_users_by_field" in xapi.lms.get("/_fake/calls").json()


def test_a_voiding_first_and_a_forwarded_copy_over_http(xapi: XapiStack) -> None:
    """Found trying the endpoint (t24): a statement voided before it arrives must never reach
    Coachview (xAPI-Data.md 2.3.2), and an LRS's forwarded copy of a statement gradesync has
    (timestamp re-serialized, Verb display dropped, ``version`` set) is the same statement, not a
    409 it resends for ever (xAPI-Data.md 2.3.1)."""
    xapi.reset()
    ((enrolment, component),) = xapi.seed([("601", "2")]).values()
    sid = "8f1c2e9a-0b7d-4c55-9e21-3a6b5d4f7e10"
    base = copy.deepcopy(_logstore_batch()[0])
    base["actor"]["account"]["name"] = "601"
    voiding = {
        "actor": {"mbox": "mailto:admin@example.nl"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": sid},
    }
    assert xapi.post("moodle", [voiding, {**base, "id": sid}]).status_code == 200
    assert xapi.counted("moodle", "ignored", "voided_before_arrival") >= 1
    assert xapi.record("moodle", "601", "2") is None
    assert not xapi.component(enrolment, component)["passed"]
    # Another statement, then its forwarded copy.
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    stamp = at.astimezone(timezone(timedelta(hours=1))).isoformat()  # the LMS's zone
    kept = {**base, "id": "8f1c2e9a-0b7d-4c55-9e21-3a6b5d4f7e11", "timestamp": stamp}
    assert xapi.post("moodle", [kept]).status_code == 200
    assert xapi.settle("moodle", "601", "2").state == "delivered"
    forwarded = {
        **kept,
        "verb": {"id": kept["verb"]["id"]},
        "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),  # as an LRS returns it
        "stored": at.strftime("%Y-%m-%dT%H:%M:%S.123Z"),
        "version": "1.0.0",
    }
    again = xapi.post("moodle", [forwarded])
    assert (again.status_code, again.json()) == (200, [kept["id"]]), again.text
