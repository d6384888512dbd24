"""Flower, started as operators start it, shows no grade and no person id of a real completion:
not in task arguments, return values, retry reasons or failures (workers/privacy.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gradesync.procs import Proc, free_port, start_flower, wait_until
from tests.integration.conftest import Stack, canonical

GRADE = "7.35"
LMS_PERSON = "lms-learner-4711"
COACHVIEW_PERSON = 908172
AUTH = ("ops", "flower-test-password")


@pytest.fixture
def flower(clean: Stack) -> Iterator[httpx.Client]:
    port = free_port()
    env = {**clean.env, "FLOWER_BASIC_AUTH": ":".join(AUTH)}
    proc: Proc = start_flower(port, clean.workdir, env)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=AUTH, timeout=10)
    try:
        # Flower only sees events sent after it listens: wait until a worker heartbeat reached it.
        wait_until(lambda: client.get("/workers", params={"json": 1}).json()["data"], timeout=30)
        yield client
    finally:
        client.close()
        proc.stop()


def _strings(value: Any) -> Iterator[str]:
    """Every text in Flower's answer (keys and values). Numbers are left out: a timestamp's
    digits may contain a grade's by chance, and no personal value is sent as a number."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def test_flower_api_shows_no_grade_and_no_person_id(clean: Stack, flower: httpx.Client) -> None:
    clean.seed(
        {
            "persons": [{"id": COACHVIEW_PERSON, "externId": LMS_PERSON}],
            "trainings": [{"id": 501, "components": [{"id": 9001, "elearningCourseId": "12"}]}],
            "enrolments": [{"id": 7001, "personId": COACHVIEW_PERSON, "trainingId": 501}],
        }
    )
    # Coachview fails every request until the first step has been retried: task-retried events
    # (with the error text) and re-sent messages are part of what Flower sees.
    clean.faults(error_rate=1.0, error_status=503)
    rid = clean.enqueue(canonical(person_id=LMS_PERSON, grade=GRADE, event_id="flower-privacy"))
    wait_until(lambda: clean.state()["requests"]["total"] >= 2, timeout=30, interval=0.1)
    clean.faults()
    assert clean.settle(rid, timeout=90).state == "delivered"
    assert clean.component(7001, 9001)["result"] == GRADE

    def all_steps_seen() -> list[dict[str, Any]] | None:
        tasks = list(flower.get("/api/tasks").raise_for_status().json().values())
        states = {(t["name"], t["state"]) for t in tasks}
        return tasks if ("gradesync.write_request_component", "SUCCESS") in states else None

    tasks: list[dict[str, Any]] = wait_until(all_steps_seen, timeout=30, interval=0.5)
    assert any(t["retries"] for t in tasks), "the 503s should have caused retries"
    assert any(t["args"] == f"key={rid}" for t in tasks)  # operators still see the record id
    details = [flower.get(f"/api/task/info/{t['uuid']}").raise_for_status().json() for t in tasks]
    seen = "\n".join(_strings([tasks, details]))
    for personal in (GRADE, LMS_PERSON, str(COACHVIEW_PERSON)):
        assert personal not in seen, (personal, json.dumps(tasks)[:3000])


def test_flower_metrics_need_the_login(flower: httpx.Client) -> None:
    """Issue 25 item 11: Flower's own /metrics answered without login."""
    base = str(flower.base_url)
    assert httpx.get(f"{base}/metrics", timeout=10).status_code == 401
    assert httpx.get(f"{base}/metrics", auth=("ops", "wrong"), timeout=10).status_code == 401
    answer = flower.get("/metrics")
    assert answer.status_code == 200 and "flower_" in answer.text
