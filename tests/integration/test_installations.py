"""Several LMS installations in one deployment (issue 16), over real processes: redis-server,
the simulator, the ingress and a worker reading one sources file, and two fake LMS processes
(installation "A" and "B", each with its own credentials) serving two Moodle installations,
two aNewSpring academies and two ILIAS installations."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from celery import Celery

from gradesync import keys
from gradesync.ledger import Ledger
from gradesync.procs import BIN, ROOT, Proc, free_port, start_redis, start_sim, wait_until
from gradesync.record import Record
from gradesync.settings import PER_KIND_VARIABLE
from producers.signatures import anewspring_signature

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HOOKS = {
    "STAFF_HOOK": "staff-moodle-webhook-token",
    "ACME_HOOK": "acme-moodle-webhook-token",
    "NORTH_HOOK": "north-academy-hmac-key",
    "SOUTH_HOOK": "south-academy-hmac-key",
    # One secret per installation: a shared one is refused (either's signature would pass).
    "ILIAS_EAST_HOOK": "whsec_aWxpYXMtaW5zdGFsbGF0aW9ucy1rZXk=",
    "ILIAS_WEST_HOOK": "whsec_aWxpYXMtd2VzdC1pbnN0YWxsYXRpb24ta2V5",
}
INSTALLATIONS = [
    ("moodle", "staff"),
    ("moodle", "acme"),
    ("anewspring", "north"),
    ("anewspring", "south"),
    ("ilias", "east"),
    ("ilias", "west"),
]
CREDENTIALS = {"A": ("moodle-a-ws-token", "asp-a-key"), "B": ("moodle-b-ws-token", "asp-b-key")}


def sources(lms: dict[str, str]) -> dict[str, Any]:
    def api(site: str, path: str, n: int) -> dict[str, str]:
        return {"url": f"{lms[site]}{path}", "credential_env": f"LMS_{site}_CREDENTIAL_{n}"}

    soap = "/webservice/soap/server.php"
    return {
        "installations": [
            {
                "kind": "moodle",
                "instance": "staff",
                "secret_env": "STAFF_HOOK",
                "api": api("A", "", 0),
            },
            {
                "kind": "moodle",
                "instance": "acme",
                "secret_env": "ACME_HOOK",
                "api": api("B", "", 0),
                # The client's Coachview knows its learners and courses by Moodle's idnumber.
                "person_field": "idnumber",
                "course_field": "idnumber",
            },
            {
                "kind": "anewspring",
                "instance": "north",
                "secret_env": "NORTH_HOOK",
                "api": api("A", "", 1),
            },
            {
                "kind": "anewspring",
                "instance": "south",
                "secret_env": "SOUTH_HOOK",
                "api": api("B", "", 1),
            },
            *(
                {
                    "kind": "ilias",
                    "instance": name,
                    "secret_env": f"ILIAS_{name.upper()}_HOOK",
                    "api": {"url": f"{lms[site]}{soap}", "credential": "soap-password"},
                    "user": "gradesync",
                    "poll_interval_s": 3600,  # polled by hand below, not by a beat
                }
                for name, site in (("east", "A"), ("west", "B"))
            ),
        ]
    }


class Installations:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[str, Proc] = {}
        ports = {name: free_port() for name in ("redis", "sim", "api", "A", "B")}
        self.lms = {site: f"http://127.0.0.1:{ports[site]}" for site in ("A", "B")}
        path = workdir / "sources.yaml"
        path.write_text(yaml.safe_dump(sources(self.lms), sort_keys=False))
        self.broker = f"redis://127.0.0.1:{ports['redis']}/0"
        self.env = {
            # The session's per-kind variables are not read with a sources file (doctor would
            # rightly name them): a deployment with a file has none.
            **{k: v for k, v in os.environ.items() if not PER_KIND_VARIABLE.fullmatch(k)},
            **HOOKS,
            "REDIS_URL": self.broker,
            "COACHVIEW_BASE_URL": f"http://127.0.0.1:{ports['sim']}",
            "GRADESYNC_SOURCES": str(path),
            **{f"LMS_{s}_CREDENTIAL_{n}": c[n] for s, c in CREDENTIALS.items() for n in (0, 1)},
        }
        self.ports = ports
        self.redis = redis.Redis(port=ports["redis"])
        self.ledger = Ledger(self.redis)
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{ports['api']}", timeout=10)
        self.sim = httpx.Client(base_url=f"http://127.0.0.1:{ports['sim']}", timeout=10)
        self.celery = Celery(broker=self.broker)

    def start(self) -> None:
        self.procs["redis"] = start_redis(self.ports["redis"], self.workdir, self.env)
        self.procs["sim"] = start_sim(self.ports["sim"], self.workdir, self.env)
        for site, (token, key) in CREDENTIALS.items():
            args = ["--port", str(self.ports[site]), "--moodle-token", token]
            self.procs[f"lms-{site}"] = Proc(
                f"lms-{site}",
                [sys.executable, "-m", "tests.fakes.lms", *args, "--anewspring-key", key],
                self.workdir,
                self.env,
            )
        self.procs["api"] = Proc(
            "api",
            [str(BIN / "gradesync"), "api", "--port", str(self.ports["api"])],
            self.workdir,
            self.env,
        )
        api = f"http://127.0.0.1:{self.ports['api']}/healthz"
        for url in (*(f"{u}/_fake/calls" for u in self.lms.values()), api):
            wait_until(partial(lambda u: httpx.get(u).is_success, url), timeout=30)
        self.start_worker()

    def start_worker(self, **env: str) -> None:
        proc = Proc(
            "worker",
            [
                *(str(BIN / "celery"), "-A", "workers", "worker", "-n", "inst@%h", "-c", "2"),
                *("--loglevel", "INFO", "--without-gossip", "--without-mingle"),
            ],
            self.workdir,
            self.env | env,
        )
        self.procs["worker"] = proc
        node = f"inst@{socket.gethostname()}"

        def answers() -> bool:
            assert proc.alive(), proc.log()[-3000:]
            return bool(self.celery.control.ping(destination=[node], timeout=0.5))

        wait_until(answers, timeout=60, interval=0.2)

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()

    def fake(self, site: str) -> httpx.Client:
        return httpx.Client(base_url=self.lms[site], timeout=10)

    def settle(self, rid: str) -> Record:
        def done() -> Record | None:
            rec = self.ledger.get(rid)
            return rec if rec is not None and rec.state not in ("queued", "in_progress") else None

        found: Record = wait_until(done, timeout=60)
        return found

    def component(self, enrolment_id: int, component_id: int) -> dict[str, Any]:
        rows = self.sim.get("/_sim/state").raise_for_status().json()["enrolmentComponents"]
        return next(
            dict(r)
            for r in rows
            if r["enrolmentId"] == enrolment_id and r["componentId"] == component_id
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installations]:
    s = Installations(tmp_path_factory.mktemp("installations"))
    try:
        s.start()
        yield s
    finally:
        s.stop()


def seed(stack: Installations) -> None:
    """The fixture's Coachview, plus the client's learner and course as acme's Moodle knows
    them (by idnumber): the same Moodle ids in two installations are two people."""
    stack.sim.post("/_sim/reset").raise_for_status()
    stack.sim.post("/_sim/seed", json=json.loads((FIXTURES / "coachview-seed.json").read_text()))
    stack.sim.post(
        "/_sim/seed",
        json={
            "persons": [{"id": 2057, "externId": "ACME-57", "firstName": "A", "lastName": "C"}],
            "trainings": [
                {
                    "id": 601,
                    "name": "Acme VCA",
                    "components": [
                        {"id": 9601, "name": "E-learning", "elearningCourseId": "ACME-12"}
                    ],
                }
            ],
            "enrolments": [{"id": 7601, "personId": 2057, "trainingId": 601}],
        },
    ).raise_for_status()


def moodle_webhook(token: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        (FIXTURES / "moodle-local_webhooks-course_completed.json").read_text()
    )
    return {**body, "token": token}


def test_two_moodles_same_ids_two_records_each_with_its_own_grade(stack: Installations) -> None:
    seed(stack)
    done = {"completed": True, "criteria": [1795128000]}
    stack.fake("A").post(
        "/_fake/moodle", json={"12/57": {**done, "graderaw": 6.5, "gradeformatted": "6,50"}}
    )
    stack.fake("B").post(
        "/_fake/moodle",
        json={
            "12/57": {
                **done,
                "graderaw": 8.5,
                "gradeformatted": "8,50",
                "idnumber": "ACME-57",
                "courseidnumber": "ACME-12",
            }
        },
    )
    staff = stack.api.post("/events/moodle/staff", json=moodle_webhook(HOOKS["STAFF_HOOK"]))
    acme = stack.api.post("/events/moodle/acme", json=moodle_webhook(HOOKS["ACME_HOOK"]))
    assert (staff.status_code, acme.status_code) == (202, 202), (staff.text, acme.text)
    one, two = stack.settle(staff.json()["key"]), stack.settle(acme.json()["key"])
    assert {one.event.key.text(), two.event.key.text()} == {
        "moodle|staff|57|12",
        "moodle|acme|57|12",
    }
    assert (one.state, two.state) == ("delivered", "delivered"), (one.last_error, two.last_error)
    assert stack.component(7001, 9001)["result"] == "6.9"  # staff: 1 + 9 × 6.5/10, half up
    assert stack.component(7601, 9601)["result"] == "8.7"  # acme: 1 + 9 × 8.5/10, half up
    # Each worker call went to its installation's own Moodle with its own token (the fakes
    # refuse any other token).
    assert "moodle:gradereport_user_get_grade_items" in stack.fake("A").get("/_fake/calls").json()
    assert "moodle:gradereport_user_get_grade_items" in stack.fake("B").get("/_fake/calls").json()


def test_a_signature_valid_for_one_installation_is_refused_on_the_other(
    stack: Installations,
) -> None:
    moodle = stack.api.post("/events/moodle/acme", json=moodle_webhook(HOOKS["STAFF_HOOK"]))
    assert moodle.status_code == 401, moodle.text
    body = (FIXTURES / "anewspring-webhook.json").read_bytes()
    north_signed = {
        "content-type": "application/json",
        "x-webhook-signature": anewspring_signature(HOOKS["NORTH_HOOK"], body),
    }
    south = stack.api.post("/events/anewspring/south", content=body, headers=north_signed)
    assert south.status_code == 401, south.text
    unknown = stack.api.post("/events/anewspring/east", content=body, headers=north_signed)
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_installation"


def test_two_academies_same_ids_two_records_each_with_its_own_grade(stack: Installations) -> None:
    seed(stack)
    stack.fake("A").post("/_fake/anewspring", json={"12/57": {"completed": True, "grade": "7.0"}})
    stack.fake("B").post("/_fake/anewspring", json={"12/57": {"completed": True, "grade": "9.0"}})
    body = (FIXTURES / "anewspring-webhook.json").read_bytes()  # the same event id for both
    records = []
    for academy, hook in (("south", "SOUTH_HOOK"), ("north", "NORTH_HOOK")):
        answer = stack.api.post(
            f"/events/anewspring/{academy}",
            content=body,
            headers={
                "content-type": "application/json",
                "x-webhook-signature": anewspring_signature(HOOKS[hook], body),
            },
        )
        assert answer.status_code == 202, answer.text
        records.append(stack.settle(answer.json()["key"]))  # one after the other
    south, north = records
    assert (south.event.key.text(), north.event.key.text()) == (
        "anewspring|south|57|12",
        "anewspring|north|57|12",
    )
    assert (south.event.grade, north.event.grade) == (
        "9.0",
        "7.0",
    )  # each from its own academy's API
    assert (south.state, north.state) == ("delivered", "delivered"), north.last_error
    # One Coachview behind both academies (until an installation can have its own: README):
    # learner 57 is one Coachview person there, so south's result, delivered first, stays
    # (Coachview's first result wins) and north's own grade is kept beside it, visibly.
    assert stack.component(7001, 9001)["result"] == "9.0"
    assert north.outcome == {"code": "result_kept_existing", "existing": "9.0", "new": "7.0"}


def ilias_since(stack: Installations, site: str) -> list[datetime]:
    found = stack.fake(site).get("/_fake/ilias_since").json()
    return [datetime.strptime(s, "%Y-%m-%d %H:%M:%S") for s in found]


def poll(stack: Installations, instance: str, site: str, polls: int) -> None:
    stack.celery.send_task("gradesync.poll_ilias", args=(instance,), queue="gradesync")
    wait_until(lambda: len(ilias_since(stack, site)) == polls, timeout=30)


def test_the_ilias_poller_keeps_one_cursor_per_installation_across_a_restart(
    stack: Installations,
) -> None:
    lp_data = (FIXTURES / "ilias-getLearningProgressChanges.xml").read_bytes()
    for site in ("A", "B"):
        stack.fake(site).post("/_fake/ilias", content=lp_data)
    poll(stack, "east", "A", 1)
    # The cursor is stored once the poll's rows are recorded, a moment after ILIAS answered.
    east_cursor = wait_until(lambda: stack.redis.get(keys.ilias_cursor("east")), timeout=30)
    assert stack.redis.get(keys.ilias_cursor("west")) is None

    stack.procs["worker"].stop()
    stack.start_worker()

    poll(stack, "east", "A", 2)
    poll(stack, "west", "B", 1)
    (first_east, second_east), (first_west,) = ilias_since(stack, "A"), ilias_since(stack, "B")
    # A first poll looks a day back; east's second asks from its own stored cursor (less the
    # two-minute overlap), not from a day back again, and west's first is west's own.
    assert timedelta(hours=23) < second_east - first_east < timedelta(hours=25)
    assert timedelta(hours=23) < second_east - first_west < timedelta(hours=25)
    wait_until(lambda: stack.redis.get(keys.ilias_cursor("west")), timeout=30)
    wait_until(lambda: stack.redis.get(keys.ilias_cursor("east")) != east_cursor, timeout=30)
    ilias_keys = {
        r.event.key.text().split("|")[1]
        for r in stack.ledger.newest()
        if isinstance(r, Record) and r.event.source == "ilias"
    }
    assert ilias_keys == {"east", "west"}  # the same LPData rows: a record per installation


def test_a_record_the_worker_cannot_place_waits_until_a_worker_knows_its_installation(
    stack: Installations,
) -> None:
    """The api restarted with a new installation before the workers: its record waits
    (``unknown_installation``, no attempt spent) instead of failing, and a worker started with
    the new sources releases it at once (the next sweep sends it)."""
    seed(stack)
    stack.sim.post(
        "/_sim/seed",
        json={
            "persons": [{"id": 2058, "externId": "ACME-58", "firstName": "B", "lastName": "C"}],
            "enrolments": [{"id": 7602, "personId": 2058, "trainingId": 601}],
        },
    ).raise_for_status()
    stack.fake("B").post(
        "/_fake/moodle",
        json={
            "12/58": {
                "completed": True,
                "criteria": [1795128000],
                "graderaw": 7.0,
                "gradeformatted": "7,00",
                "idnumber": "ACME-58",
                "courseidnumber": "ACME-12",
            }
        },
    )
    old = yaml.safe_load(Path(stack.env["GRADESYNC_SOURCES"]).read_text())
    old["installations"] = [i for i in old["installations"] if i["instance"] != "acme"]
    old_path = stack.workdir / "sources-without-acme.yaml"
    old_path.write_text(yaml.safe_dump(old, sort_keys=False))
    stack.procs["worker"].stop()
    stack.start_worker(GRADESYNC_SOURCES=str(old_path))
    try:
        body = {**moodle_webhook(HOOKS["ACME_HOOK"]), "relateduserid": "58", "objectid": 18}
        body["other"] = {"relateduserid": 58}
        answer = stack.api.post("/events/moodle/acme", json=body)
        assert answer.status_code == 202, answer.text
        rid = answer.json()["key"]

        def held() -> Record | None:
            rec = stack.ledger.get(rid)
            waiting = rec is not None and rec.last_error is not None
            return rec if waiting else None

        rec = wait_until(held, timeout=60)
        assert rec.state == "queued" and rec.attempts == 0
        assert rec.last_error is not None and rec.last_error.code == "unknown_installation"
    finally:
        stack.procs["worker"].stop()
        stack.start_worker()
    stack.celery.send_task("gradesync.sweep", queue="gradesync")  # beat runs it every minute
    done = stack.settle(rid)
    assert done.state == "delivered", done.last_error
    assert stack.component(7602, 9601)["result"] == "7.3"  # 1 + 9 × 7/10


def test_doctor_checks_every_installation_and_the_status_breaks_down_by_installation(
    stack: Installations,
) -> None:
    def cli(*args: str) -> Any:
        done = subprocess.run(
            [str(BIN / "gradesync"), *args, "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env=stack.env,
        )
        assert done.stdout, done.stderr
        return json.loads(done.stdout)

    checks = {c["name"]: c for c in cli("doctor")["checks"] if c["area"] == "lms"}
    apis = [
        "Moodle web services moodle/staff",
        "Moodle web services moodle/acme",
        "aNewSpring API anewspring/north",
        "aNewSpring API anewspring/south",
        "ILIAS SOAP ilias/east",
        "ILIAS SOAP ilias/west",
    ]
    secrets = [f"webhook secret {k}/{i}" for k, i in INSTALLATIONS]
    assert set(checks) == {*apis, *secrets, "webhook secret canonical"}
    assert all(checks[name]["status"] == "ok" for name in apis + secrets), checks
    per_installation = cli("status")["installations"]
    assert set(per_installation) >= {"moodle/staff", "moodle/acme"}


# -- refusing to start ------------------------------------------------------------------------


def broken(tmp_path: Path) -> tuple[Path, list[str]]:
    path = tmp_path / "broken.yaml"
    path.write_text(
        "installations:\n"
        "  - kind: blackboard\n"
        "  - kind: moodle\n"
        "    secret_env: NOT_SET_ANYWHERE\n"
        "    api: {url: 'moodle.example', credential: x}\n"
        "  - kind: moodle\n"
        "    secret: a-moodle-token-16b\n"
        "    grade_policy: completion_only\n"
    )
    return path, [
        f"{path}:2: installations[0].kind: unknown kind 'blackboard'",
        f"{path}:4: installations[1].secret_env: environment variable NOT_SET_ANYWHERE",
        f"{path}:5: installations[1].api.url: must be an http:// or https:// URL",
        f"{path}:6: installations[2]: moodle/default is named twice",
    ]


@pytest.mark.parametrize(
    "command",
    [
        [str(BIN / "gradesync"), "api", "--port", "0"],
        [str(BIN / "celery"), "-A", "workers", "worker", "--without-gossip", "--without-mingle"],
        [str(BIN / "celery"), "-A", "workers", "beat"],
        [str(BIN / "gradesync"), "status"],
    ],
    ids=["api", "worker", "beat", "cli"],
)
def test_a_broken_sources_file_stops_every_process_naming_each_problem(
    tmp_path: Path, command: list[str]
) -> None:
    path, problems = broken(tmp_path)
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"GRADESYNC_SOURCES": str(path)},
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "gradesync cannot start: fix the sources file" in output
    for problem in problems:
        assert sum(problem in line for line in output.splitlines()) == 1, (problem, output)
    assert "Traceback" not in output and "a-moodle-token-16b" not in output
