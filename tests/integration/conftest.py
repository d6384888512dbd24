"""A real stack for the whole session: redis-server, the simulator and a celery worker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from gradesync import keys
from gradesync.event import CompletionEvent
from gradesync.ledger import Ledger
from gradesync.procs import BIN, ROOT, Proc, start_redis, start_sim, start_worker, wait_until
from gradesync.record import Record
from gradesync.settings import Delivery
from tests.conftest import API_PORT, LMS_PORT, REDIS_PORT, SIM_PORT

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# kombu's Redis transport: messages delivered to a worker and not yet acknowledged.
BROKER_IN_FLIGHT = ("unacked", "unacked_index", "unacked_mutex")


class Stack:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.procs: dict[str, Proc] = {}
        self.redis = redis.Redis(port=REDIS_PORT)
        self.ledger = Ledger(self.redis)
        self.sim = httpx.Client(base_url=f"http://127.0.0.1:{SIM_PORT}", timeout=10)
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{API_PORT}", timeout=10)
        self.lms = httpx.Client(base_url=f"http://127.0.0.1:{LMS_PORT}", timeout=10)

    # -- simulator ---------------------------------------------------------------------------
    def seed(self, data: dict[str, Any] | None = None) -> None:
        if data is None:
            data = json.loads((FIXTURES / "coachview-seed.json").read_text())
        self.sim.post("/_sim/seed", json=data).raise_for_status()

    def state(self) -> dict[str, Any]:
        body: dict[str, Any] = self.sim.get("/_sim/state").raise_for_status().json()
        return body

    def component(self, enrolment_id: int, component_id: int) -> dict[str, Any]:
        for row in self.state()["enrolmentComponents"]:
            if row["enrolmentId"] == enrolment_id and row["componentId"] == component_id:
                return dict(row)
        raise KeyError((enrolment_id, component_id))

    def faults(self, **faults: Any) -> None:
        self.sim.post("/_sim/faults", json=faults).raise_for_status()

    # -- ledger ------------------------------------------------------------------------------
    def settle(self, rid: str, timeout: float = 30.0) -> Record:
        """Wait until the record has left queued/in_progress."""

        def done() -> Record | None:
            rec = self.ledger.get(rid)
            return rec if rec is not None and rec.state not in ("queued", "in_progress") else None

        result: Record = wait_until(done, timeout=timeout)
        return result

    def reset(self) -> None:
        """A clean slate: no message of an earlier test left to act on this one (none waiting
        in the broker, none held by the worker, none left unacknowledged by a stopped worker
        for a later one to restore), an empty ledger and simulator."""
        self.wait_idle(purge=True)
        self.redis.delete(*BROKER_IN_FLIGHT)
        self.sim.post("/_sim/reset").raise_for_status()
        keys = list(self.redis.scan_iter("gs:*"))
        if keys:
            self.redis.delete(*keys)

    def wait_idle(self, purge: bool = False, timeout: float = 30.0) -> None:
        """Until the session worker holds no task (running, prefetched or in a countdown) and
        the queue is empty: every chain has run as far as it goes. With ``purge``, what waits
        in the queue is dropped instead of run."""
        from workers.app import app

        worker = self.procs.get("worker")
        nodes = [f"w1@{socket.gethostname()}"] if worker is not None and worker.alive() else []

        def idle() -> bool:
            if purge:
                app.control.purge()
            if nodes:
                inspect = app.control.inspect(destination=nodes, timeout=2.0, limit=len(nodes))
                for held in (inspect.active(), inspect.reserved(), inspect.scheduled()):
                    if held is None or any(held.values()):
                        return False
            return keys.queue_depth(self.redis) == 0

        wait_until(idle, timeout=timeout, interval=0.1)

    def post_anewspring(self, body: bytes, content_type: str = "text/xml") -> httpx.Response:
        """aNewSpring's webhook as it sends it: the XML body, signed with the session's key."""
        from producers.signatures import anewspring_signature
        from tests.conftest import SECRETS

        signature = anewspring_signature(SECRETS["anewspring"], body)
        headers = {"content-type": content_type, "x-webhook-signature": signature}
        return self.api.post("/events/anewspring", content=body, headers=headers)

    def config(self, **config: Any) -> None:
        self.sim.post("/_sim/config", json=config).raise_for_status()

    def enqueue(self, event: CompletionEvent, delivery: Delivery | None = None) -> str:
        from gradesync.submit import submit
        from workers.pipeline import enqueue

        return submit(event, self.ledger, lambda rid: enqueue(rid, delivery)).record.id


def run_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The session's stack (the ``stack`` fixture in tests/conftest.py: defined once there, so
    integration and fault tests share one; a fixture re-exported by a second conftest is a
    second session fixture, and started a second stack whose worker stole the fault tests'
    tasks)."""
    import os

    workdir = tmp_path_factory.mktemp("stack")
    env = dict(os.environ)
    s = Stack(workdir, env)
    try:
        s.procs["redis"] = start_redis(REDIS_PORT, workdir, env)
        s.procs["sim"] = start_sim(SIM_PORT, workdir, env)
        s.procs["lms"] = Proc(
            "lms", [sys.executable, "-m", "tests.fakes.lms", "--port", str(LMS_PORT)], workdir, env
        )
        s.procs["api"] = Proc(
            "api", [str(BIN / "gradesync"), "api", "--port", str(API_PORT)], workdir, env
        )
        for url in (
            f"http://127.0.0.1:{LMS_PORT}/_fake/calls",
            f"http://127.0.0.1:{API_PORT}/healthz",
        ):
            wait_until(partial(lambda u: httpx.get(u).is_success, url))
        s.procs["worker"] = start_worker(workdir, env)
        yield s
    finally:
        for proc in reversed(list(s.procs.values())):
            proc.stop()


def gradesync(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it, in this session's environment (plus ``env``)."""
    return subprocess.run(
        [str(BIN / "gradesync"), *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | env,
    )


def canonical(**overrides: Any) -> CompletionEvent:
    data = json.loads((FIXTURES / "canonical.json").read_text())
    data.update(overrides)
    return CompletionEvent.model_validate(data)
