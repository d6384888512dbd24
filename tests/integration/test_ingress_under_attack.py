"""A real ``gradesync api`` process under attack (issue 25 items 1 and 4).

No set of unauthenticated requests grows the ingress by more than 50 MiB, measured as the peak
resident set (``VmHWM``) of the process.

Before the fix, Starlette parsed a console form whole before the handler looked at it: three
concurrent POSTs of 999 × 1 MiB took the api from 122 MiB to 3.2 GiB. Here three callers each
stream 64 MiB of form fields, unannounced (chunked) and announced, at the login and logout forms
and at a webhook route."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from gradesync.procs import BIN, Proc, free_port, wait_until
from producers.signatures import standard_signature
from tests.conftest import SECRETS
from tests.integration.conftest import FIXTURES, Stack

MIB = 1024 * 1024
PER_CALLER = 64 * MIB
GROWTH_ALLOWED = 50 * MIB


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def form_chunks() -> Iterator[bytes]:
    field = b"f=" + b"a" * (MIB - 3) + b"&"
    for _ in range(PER_CALLER // MIB):
        yield field


@pytest.fixture
def api(stack: Stack, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """An api process of its own (its memory measured alone), with ``request.param``'s
    variables on top of the session's."""
    env = dict(os.environ) | getattr(request, "param", {})
    port = free_port()
    proc = Proc("api-attacked", [str(BIN / "gradesync"), "api", "--port", str(port)], tmp_path, env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{base}/healthz").is_success, timeout=60)
        yield base, proc.popen.pid
    finally:
        proc.stop()


def test_unauthenticated_bodies_do_not_grow_the_ingress(api: tuple[str, int]) -> None:
    base, pid = api
    with httpx.Client(base_url=base) as warm:  # the routes' first use, before measuring
        warm.get("/console/login")
        warm.post("/console/login", data={"user": "x", "password": "y"})
        warm.post("/events", content=b"{}", headers={"content-type": "application/json"})
    before = peak_rss(pid)

    def attack(target: tuple[str, bool]) -> None:
        path, announced = target
        content = b"".join(form_chunks()) if announced else form_chunks()
        with contextlib.suppress(httpx.HTTPError), httpx.Client(base_url=base, timeout=60) as c:
            c.post(
                path,
                content=content,
                headers={"content-type": "application/x-www-form-urlencoded"},
            )

    targets = [(p, a) for p in ("/console/login", "/console/logout") for a in (False, True)]
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(attack, targets * 2 + [("/events", False)] * 3))
    growth = peak_rss(pid) - before
    assert growth <= GROWTH_ALLOWED, f"the api grew by {growth / MIB:.0f} MiB"
    assert httpx.get(f"{base}/healthz").is_success


# An operator's pattern that backtracks polynomially: 500 characters keep it busy for seconds.
EVIL_PATTERN = {"XAPI_COURSE_PATTERN": r"(?P<course>.*a.*a.*a.*a.*b)"}


def signed_statement(object_id: str) -> tuple[bytes, dict[str, str]]:
    statement = json.loads((FIXTURES / "xapi-completed.json").read_text())
    statement["object"]["id"] = object_id
    body = json.dumps(statement).encode()
    stamp, msg_id = str(int(time.time())), f"msg-{time.monotonic_ns()}"
    return body, {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": standard_signature(SECRETS["xapi"], msg_id, stamp, body),
    }


def _answers_at_once(base: str, during: Callable[[], httpx.Response]) -> httpx.Response:
    """While ``during`` runs, ``/healthz`` and the console answer within a second."""
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(during)
        time.sleep(0.3)  # the statement is in
        for path in ("/healthz", "/console/login", "/healthz"):
            started = time.monotonic()
            assert httpx.get(f"{base}{path}", timeout=60).status_code in (200, 401)
            assert time.monotonic() - started < 1.0, path
        return slow.result()


def test_a_statement_with_a_huge_object_id_never_freezes_the_ingress(
    api: tuple[str, int],
) -> None:
    """``object.id`` = 60,000 × ``a`` + ``//``: the default pattern backtracked quadratically
    on the event loop (38 s in the trial); now refused by length before any pattern runs."""
    base, _ = api
    body, headers = signed_statement("a" * 60_000 + "//")
    answer = _answers_at_once(
        base, lambda: httpx.post(f"{base}/events/xapi", content=body, headers=headers, timeout=300)
    )
    assert answer.status_code == 422 and "object.id" in answer.text


@pytest.mark.parametrize("api", [EVIL_PATTERN], indirect=True)
def test_a_slow_course_pattern_is_cut_off_and_holds_up_nothing(api: tuple[str, int]) -> None:
    """Parsing runs off the event loop, the pattern without the GIL and within its timeout."""
    base, _ = api
    body, headers = signed_statement("https://lms.example.nl/" + "a" * 500)
    started = time.monotonic()
    answer = _answers_at_once(
        base, lambda: httpx.post(f"{base}/events/xapi", content=body, headers=headers, timeout=300)
    )
    # Cut off and named (a counted reason, as on the Statement endpoint), never a hang.
    assert answer.status_code == 202 and "course_pattern_too_slow" in answer.text
    assert time.monotonic() - started < 30
