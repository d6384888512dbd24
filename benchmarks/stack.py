"""A private stack for benchmarks: its own redis-server, simulator and workers on free ports."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from gradesync.procs import Proc, free_port, start_redis, start_sim, start_worker, wait_until


class BenchStack:
    def __init__(
        self, workdir: Path, workers: int = 2, extra: tuple[str, ...] = (), **env: str
    ) -> None:
        self.extra = extra
        self.redis_port, self.sim_port = free_port(), free_port()
        # Before anything reads gradesync's settings: this process and its children agree.
        os.environ.update(
            {
                "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "COACHVIEW_BASE_URL": f"http://127.0.0.1:{self.sim_port}",
                "GRADESYNC_LOG_LEVEL": "WARNING",
                # The benchmark delivers to the simulator: a development setting.
                "GRADESYNC_INSECURE_DEV": "1",
                **env,
            }
        )
        self.workdir = workdir
        self.workers = workers
        self.env = dict(os.environ)
        self.procs: list[Proc] = []
        self.sim = httpx.Client(base_url=f"http://127.0.0.1:{self.sim_port}", timeout=30)

    def __enter__(self) -> BenchStack:
        self.procs.append(start_redis(self.redis_port, self.workdir, self.env))
        self.procs.append(start_sim(self.sim_port, self.workdir, self.env))
        self.procs.append(start_worker(self.workdir, self.env, "bench", self.workers, self.extra))

        from workers import resources  # deferred: the stack's REDIS_URL is set just before

        self.ledger = resources.ledger()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def reset(self) -> None:
        self.sim.post("/_sim/reset").raise_for_status()
        keys = list(self.ledger.r.scan_iter("gs:*"))
        for start in range(0, len(keys), 1000):
            self.ledger.r.delete(*keys[start : start + 1000])

    def config(self, **config: Any) -> None:
        self.sim.post("/_sim/config", json=config).raise_for_status()

    def seed(self, data: dict[str, Any]) -> None:

        self.sim.post("/_sim/seed", json=data).raise_for_status()

    def state(self) -> dict[str, Any]:
        body: dict[str, Any] = self.sim.get("/_sim/state").raise_for_status().json()
        return body

    def deliver(self, events: list[dict[str, Any]], mode: str, timeout: float = 600) -> list[float]:
        """Enqueue every event, wait until all are delivered; end-to-end latencies (s)."""
        # Deferred: settings (REDIS_URL, ports) are read on import, after the stack set them.
        from gradesync.event import CompletionEvent
        from gradesync.submit import submit
        from workers.pipeline import enqueue

        sent_at: dict[str, float] = {}
        for data in events:
            rid = submit(
                CompletionEvent.model_validate(data),
                self.ledger,
                lambda rid: enqueue(rid, mode),  # type: ignore[arg-type]
            ).record.id
            sent_at[rid] = time.time()
        wait_until(lambda: self.ledger.counts()["delivered"] == len(events), timeout, 0.2)
        latencies = []
        for rid, t0 in sent_at.items():
            rec = self.ledger.get(rid)
            assert rec is not None and rec.state == "delivered"
            latencies.append(rec.updated.timestamp() - t0)
        return latencies
