"""No set of unauthenticated requests grows the ingress by more than 50 MiB (issue 25 item 1),
measured as the peak resident set (``VmHWM``) of a real ``gradesync api`` process.

Before the fix, Starlette parsed a console form whole before the handler looked at it: three
concurrent POSTs of 999 × 1 MiB took the api from 122 MiB to 3.2 GiB. Here three callers each
stream 64 MiB of form fields, unannounced (chunked) and announced, at the login and logout forms
and at a webhook route."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from gradesync.procs import BIN, Proc, free_port, wait_until
from tests.integration.conftest import Stack

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
def api(stack: Stack, tmp_path: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    proc = Proc(
        "api-memory",
        [str(BIN / "gradesync"), "api", "--port", str(port)],
        tmp_path,
        dict(os.environ),
    )
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
