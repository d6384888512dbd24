"""First contact with a Coachview that does not answer like the simulator, over real
processes: a real worker (its own Redis database, so the session's worker never sees these
messages), `gradesync enqueue`, and an HTTP server that answers what a wrong base URL, a proxy
login page, a renamed field or the simulator itself would. Each ends ``failed`` with a typed
code within seconds; none stays ``in_progress``."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from gradesync.coachview.budget import KEY as BUDGET_KEY
from gradesync.coachview.gate import PAUSE
from gradesync.http import MAX_RETRY_AFTER_S
from gradesync.ledger import Ledger, utcnow
from gradesync.metrics import FAILED_KEY
from gradesync.procs import BIN, ROOT, Proc, free_port, wait_until
from gradesync.record import Record
from tests.conftest import REDIS_PORT
from tests.integration.conftest import FIXTURES, Stack

LOGIN_PAGE = b"<html><head><title>Sign in - Contoso proxy 4242</title></head><body></body></html>"


class OddCoachview(BaseHTTPRequestHandler):
    mode = "html"

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        token = self.path.startswith("/auth/connect/token")
        headers: dict[str, str] = {}
        if OddCoachview.mode == "html":
            status, body, kind = 200, LOGIN_PAGE, "text/html"
        elif OddCoachview.mode == "renamed" and token:
            status, body, kind = (
                200,
                b'{"access_token": "t", "expires_in": 3600}',
                "application/json",
            )
        elif OddCoachview.mode == "renamed":
            status, body, kind = 200, b'[{"persoonId": 1001, "externId": "57"}]', "application/json"
        elif OddCoachview.mode in ("odd_budget", "long_retry_after") and token:
            status, body, kind = (
                200,
                b'{"access_token": "t", "expires_in": 3600}',
                "application/json",
            )
        elif OddCoachview.mode == "odd_budget":  # no such person, said with absurd headers
            found = not self.path.startswith("/api/v1/Personen/")
            status, body, kind = (200 if found else 404), b"[]", "application/json"
            headers |= {
                "X-Rate-Limit-Limit": "5000",
                "X-Rate-Limit-Remaining": "inf",
                "X-Rate-Limit-Reset": "inf",
            }
        elif OddCoachview.mode == "long_retry_after":
            status, body, kind = 429, b"slow down", "text/plain"
            headers["Retry-After"] = "99999999999"
        else:  # the simulator, reached without GRADESYNC_INSECURE_DEV
            status, body, kind = (
                200,
                b'{"access_token": "t", "expires_in": 3600}',
                "application/json",
            )
            headers["X-Gradesync-Simulator"] = "1"
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def odd(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), OddCoachview)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    workdir = tmp_path_factory.mktemp("odd")
    env = {
        **os.environ,
        "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/1",
        "COACHVIEW_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}",
        "GRADESYNC_INSECURE_DEV": "0",
        # Outside development a worker needs credentials of its own (not the simulator's).
        "COACHVIEW_CLIENT_ID": "first-contact",
        "COACHVIEW_CLIENT_SECRET": "first-contact-secret",
    }
    r = redis.Redis(port=REDIS_PORT, db=1)
    r.flushdb()
    # Not start_worker: it pings through this process's broker (database 0).
    worker = Proc(
        "worker-odd",
        [str(BIN / "celery"), "-A", "workers", "worker", "-n", "odd@%h", "-c", "1"],
        workdir,
        env,
    )
    wait_until(lambda: "ready." in worker.log(), timeout=60, interval=0.2)
    try:
        yield {"env": env, "ledger": Ledger(r), "workdir": workdir}
    finally:
        worker.stop()
        server.shutdown()
        r.flushdb()


def _enqueue(odd: dict[str, Any], mode: str, person: str) -> str:
    OddCoachview.mode = mode
    event = {**json.loads((FIXTURES / "canonical.json").read_text()), "person_id": person}
    event.pop("event_id", None)
    done = subprocess.run(
        [str(BIN / "gradesync"), "enqueue", "--json", "-"],
        input=json.dumps(event),
        env=odd["env"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    rid: str = json.loads(done.stdout)["key"]
    return rid


def _deliver(odd: dict[str, Any], mode: str, person: str) -> Record:
    rid = _enqueue(odd, mode, person)
    ledger: Ledger = odd["ledger"]

    def closed() -> Record | None:
        rec = ledger.get(rid)
        return rec if rec is not None and rec.state not in ("queued", "in_progress") else None

    record: Record = wait_until(closed, timeout=30)
    return record


def test_a_login_page_ends_failed_with_an_excerpt(odd: dict[str, Any]) -> None:
    record = _deliver(odd, "html", "501")
    assert record.state == "failed" and record.last_error is not None
    assert record.last_error.code == "unexpected_response"
    assert "text/html" in record.last_error.message and "Contoso proxy" in record.last_error.message
    assert "4242" not in record.last_error.message  # redacted
    assert int(odd["ledger"].r.hget(FAILED_KEY, "unexpected_response") or 0) >= 1


def test_a_renamed_field_ends_failed_naming_it(odd: dict[str, Any]) -> None:
    record = _deliver(odd, "renamed", "502")
    assert record.state == "failed" and record.last_error is not None
    assert record.last_error.code == "unexpected_response"
    assert "'id'" in record.last_error.message


def test_the_simulator_is_refused_outside_development(odd: dict[str, Any]) -> None:
    record = _deliver(odd, "simulator", "503")
    assert record.state == "failed" and record.last_error is not None
    assert record.last_error.code == "coachview_is_simulator"
    assert "GRADESYNC_INSECURE_DEV" in record.last_error.message


def test_absurd_budget_headers_and_a_poisoned_budget_break_nothing(odd: dict[str, Any]) -> None:
    r: redis.Redis = odd["ledger"].r
    # What an older version stored after "X-Rate-Limit-Reset: inf".
    r.hset(BUDGET_KEY, mapping={"limit": "5000", "remaining": "4000", "reset_at": "inf"})
    record = _deliver(odd, "odd_budget", "504")
    assert record.state == "unresolved" and record.last_error is not None
    assert record.last_error.code == "unknown_person"  # not an OverflowError
    status = subprocess.run(
        [str(BIN / "gradesync"), "status", "--json"],
        env=odd["env"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["budget"] is None
    r.delete(BUDGET_KEY)


def test_a_retry_after_of_centuries_waits_a_day_in_the_ledger(odd: dict[str, Any]) -> None:
    ledger: Ledger = odd["ledger"]
    rid = _enqueue(odd, "long_retry_after", "505")

    def deferred() -> Record | None:
        rec = ledger.get(rid)
        waiting = rec is not None and rec.state == "queued" and rec.last_error is not None
        return rec if waiting else None

    try:
        record: Record = wait_until(deferred, timeout=30)
        assert record.last_error is not None and record.last_error.code == "rate_limited"
        latest = utcnow() + timedelta(seconds=MAX_RETRY_AFTER_S + 60)
        assert record.next_attempt is not None and record.next_attempt <= latest
        paused_until = float(ledger.r.get(PAUSE) or 0)
        assert 0 < paused_until <= latest.timestamp()
    finally:
        ledger.r.delete(PAUSE)  # the module's other tests must not wait a day


def test_a_worker_outside_development_refuses_the_simulators_defaults(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COACHVIEW_")}
    env["GRADESYNC_INSECURE_DEV"] = "0"
    run = subprocess.run(
        [str(BIN / "celery"), "-A", "workers", "worker", "--pool=solo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr[-2000:]
    assert "COACHVIEW_BASE_URL is not set" in run.stderr
    assert "COACHVIEW_CLIENT_SECRET are the simulator's" in run.stderr
    assert "Traceback" not in run.stderr
