"""Fault tests take over the session stack's workers: they start, kill and restart their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gradesync.procs import Proc, start_worker
from tests.integration.conftest import Stack

FAST_REDELIVERY = {"GRADESYNC_VISIBILITY_TIMEOUT_S": "3", "GRADESYNC_RESTORE_INTERVAL_S": "1"}


class Workers:
    def __init__(self, owner: Stack, workdir: Path) -> None:
        self.stack = owner

        self.workdir = workdir
        self.running: list[Proc] = []
        self.n = 0

    def start(self, concurrency: int = 1, queues: str = "", **env: str) -> Proc:
        """A worker; ``queues``: its ``-Q`` (none: the pipeline's queue)."""
        self.n += 1
        proc = start_worker(
            self.workdir,
            {**self.stack.env, **FAST_REDELIVERY, **env},
            f"fault{self.n}",
            concurrency,
            ("-Q", queues) if queues else (),
        )
        self.running.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.running:
            proc.stop()
        self.running.clear()


@pytest.fixture
def workers(clean: Stack, tmp_path: Path) -> Iterator[Workers]:
    session_worker = clean.procs.pop("worker")
    session_worker.stop()
    # The fault tests must own every consumer of the broker: a worker left running (a second
    # session stack's did once) takes their tasks, unthrottled and unheld.
    from workers.app import app

    others = app.control.ping(timeout=0.5)
    assert not others, f"another worker consumes the session's broker: {others}"
    pool = Workers(clean, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()
        clean.faults()
        clean.procs["worker"] = start_worker(clean.workdir, clean.env)
