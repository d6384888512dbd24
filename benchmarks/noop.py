"""The baseline's tasks: a chain of these does nothing but pass a value along the broker."""

from __future__ import annotations

from typing import Any

from workers.app import app

DONE = "bench:done"


@app.task(name="bench.noop", ignore_result=True)
def noop(ctx: Any, rid: str) -> Any:
    return ctx


@app.task(name="bench.done", ignore_result=True)
def done(ctx: Any, rid: str) -> None:
    from workers import resources  # deferred: runs inside the benchmark's own worker

    resources.ledger().r.incr(DONE)
