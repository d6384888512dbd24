"""Beat's tasks: the daily retry pass and the sweep that re-sends records whose message was lost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel

from gradesync import logs
from gradesync.ledger import Ledger, utcnow
from workers import resources
from workers.app import app
from workers.pipeline import enqueue

log = logs.get("gradesync.schedule")
BATCH = 1000
# Longer than any record → send gap in a healthy process, so the sweep never races a send.
SWEEP_GRACE = timedelta(minutes=2)


class PassResult(BaseModel):
    requeued: int = 0
    given_up: int = 0


def run_retry_pass(
    ledger: Ledger,
    as_of: datetime,
    max_retries: int,
    send: Callable[[str], None] = enqueue,
) -> PassResult:
    """Re-enqueue every due ``unresolved`` record once; give up those out of retries.

    Only the due index is read, so the pass costs what is due, not what is pending. Each
    record is taken by an atomic transition: two passes at once cannot both take it.
    """
    result = PassResult()
    while True:
        ids = ledger.due_ids(as_of, BATCH)
        if not ids:
            return result
        moved = 0
        for rid in ids:
            outcome = ledger.requeue_due(rid, as_of, utcnow(), max_retries)
            if outcome == "requeued":
                send(rid)
                result.requeued += 1
                moved += 1
            elif outcome == "given_up":
                result.given_up += 1
                moved += 1
        if moved == 0:  # everything left was taken by a concurrent pass
            return result


def sweep(ledger: Ledger, now: datetime, send: Callable[[str], None]) -> int:
    """Send what was recorded but never reached the broker (a crash between the two)."""
    sent = 0
    for rid in ledger.unsent(now - SWEEP_GRACE):
        send(rid)
        sent += 1
    return sent


@app.task(name="gradesync.retry_pass", ignore_result=True)
def retry_pass_task() -> dict[str, int]:
    s = resources.settings()
    result = run_retry_pass(resources.ledger(), utcnow(), s.retry_max_attempts)
    log.info("retry_pass", requeued=result.requeued, given_up=result.given_up)
    return result.model_dump()


@app.task(name="gradesync.sweep", ignore_result=True)
def sweep_task() -> int:
    sent = sweep(resources.ledger(), utcnow(), enqueue)
    if sent:
        log.warning("sweep", resent=sent)
    return sent
