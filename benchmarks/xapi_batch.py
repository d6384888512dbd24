"""The xAPI Statement endpoint taking a log store's batch: a real redis-server, the ingress in
process (its ASGI app), a batch like moodle-logstore_xapi's (one course completion in ten, the
rest activity completions it also sends), taken once and then resent.

    .venv/bin/python -m benchmarks.xapi_batch --statements 700
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import tempfile
import time
from pathlib import Path

import redis
import yaml
from fastapi.testclient import TestClient

from gradesync.ledger import Ledger
from gradesync.procs import free_port, start_redis
from gradesync.settings import Settings
from producers.api import create_app

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "conformance" / "xapi"
LOGIN = ("bench-logstore", "bench-logstore-password")


def batch(size: int) -> list[dict[str, object]]:
    def first(name: str) -> dict[str, object]:
        statements: list[dict[str, object]] = json.loads((CORPUS / name).read_text())["statements"]
        return statements[0]

    course = first("moodle-logstore_xapi-course_completed.json")
    activity = first("moodle-logstore_xapi-course_module_completion.json")
    out = []
    for n in range(size):
        statement = copy.deepcopy(course if n % 10 == 0 else activity)
        statement["actor"] = {"account": {"homePage": "http://www.example.org", "name": str(n)}}
        out.append(statement)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--statements", type=int, default=700)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gradesync-bench-"))
    port = free_port()
    server = start_redis(port, work, dict(os.environ))
    try:
        sources = work / "sources.yaml"
        login = {"username": LOGIN[0], "password": LOGIN[1]}
        sources.write_text(
            yaml.safe_dump(
                {"installations": [{"kind": "xapi", "instance": "m", "basic_auth": login}]}
            )
        )
        settings = Settings(GRADESYNC_SOURCES=str(sources), REDIS_URL=f"redis://127.0.0.1:{port}/0")
        client = TestClient(create_app(Ledger(redis.Redis(port=port)), lambda rid: None, settings))
        body = json.dumps(batch(args.statements)).encode()
        headers = {
            "authorization": "Basic " + base64.b64encode(":".join(LOGIN).encode()).decode(),
            "x-experience-api-version": "1.0.3",
            "content-type": "application/json",
        }
        for label in ("taken", "resent"):
            started = time.perf_counter()
            answer = client.post("/xapi/m/statements", content=body, headers=headers)
            took = time.perf_counter() - started
            print(
                f"{label}: HTTP {answer.status_code}, {args.statements} statements "
                f"({len(body) / 1024:.0f} KiB) in {took * 1000:.0f} ms, "
                f"{took / args.statements * 1e6:.0f} µs per statement"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
