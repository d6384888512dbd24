"""Beat's tasks: the daily retry pass and the sweep that re-sends records whose message was lost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel

from gradesync import keys, logs, metrics
from gradesync.ledger import Ledger, utcnow
from gradesync.lms.ilias import IliasSoap
from gradesync.lms.ilias_poller import poll
from gradesync.sources import IliasSource, InstallationUnknown
from workers import resources
from workers.app import app
from workers.pipeline import enqueue

log = logs.get("gradesync.schedule")
BATCH = 1000
# REST requests one completion costs at most when person and course are cached (see README):
# rest looks a learner outside a roster up directly (two reads) and writes two entities; shadow
# mode makes only the reads; the result link makes none (its POST is not a REST request).
REQUESTS_PER_COMPLETION = {"rest": 4, "resultlink": 0, "shadow": 2}

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
            metrics.count_retry_pass(ledger.r, result.requeued, result.given_up)
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
            metrics.count_retry_pass(ledger.r, result.requeued, result.given_up)
            return result


class StallCheck(BaseModel):
    """When a run counts as stalled (see ``Ledger.take_stalled``).

    A run is legitimately quiet while its next step waits in the broker queue (a backlog can
    take longer than any fixed bound), while a step runs (at most about a minute of waiting for
    Coachview plus request timeouts) or while a retry countdown runs (recorded as progress up to
    its end). So a run is stalled only when it has made no progress for ``after`` *and* the
    queue is empty: its next step is then in no queue, and no worker is working on it.
    """

    after: timedelta
    max_stalls: int
    queue_empty: Callable[[], bool]


def sweep(
    ledger: Ledger,
    now: datetime,
    send: Callable[[str], None],
    room: int | None = None,
    stalls: StallCheck | None = None,
) -> int:
    """Send what was recorded but never reached the broker (a crash between the two), what
    waited for Coachview (budget reset, a long ``Retry-After``) once its time has come, and runs
    whose chain was lost.

    ``room`` caps how many waiting completions resume: only as many as the fresh budget can
    finish, so a reset does not restart every waiting chain at once for each to get one step
    further before the budget is gone again.
    """
    resume = BATCH if room is None else min(BATCH, room)
    unsent = ledger.take_unsent(now - SWEEP_GRACE, now)
    due = unsent + (ledger.take_deferred(now, resume) if resume else [])
    if stalls is not None and stalls.queue_empty():
        # A rerun resumes: every step skips what Coachview already holds.
        taken = ledger.take_stalled(now - stalls.after, now, stalls.max_stalls)
        if taken.failed:
            log.warning("sweep", outcome="stalled_failed", keys=taken.failed)
        due += taken.resend
    for rid in due:
        send(rid)
    return len(due)


def broker_queue_empty() -> bool:
    """No message waits in the pipeline's queue (kombu counts every priority list of it).
    Not a passive declare: Redis keeps no empty list, so that would answer "no such queue"."""
    with app.connection_for_read() as conn:
        declared = conn.default_channel.queue_declare(app.conf.task_default_queue)
        return int(declared.message_count) == 0


@app.task(name="gradesync.retry_pass", ignore_result=True)
def retry_pass_task() -> dict[str, int]:
    s = resources.settings()
    result = run_retry_pass(resources.ledger(), utcnow(), s.retry_max_attempts)
    log.info("retry_pass", requeued=result.requeued, given_up=result.given_up)
    return result.model_dump()


@app.task(name="gradesync.poll_ilias", ignore_result=True)
def poll_ilias_task(instance: str = "default") -> dict[str, object] | None:
    """Poll one ILIAS installation (beat has one schedule entry per polled installation)."""
    try:
        inst = resources.settings().sources.find("ilias", instance)
    except InstallationUnknown:
        log.warning("ilias_poll", installation=f"ilias/{instance}", outcome="unknown")
        return None
    # A disabled installation is not asked: its changes wait in ILIAS, behind its cursor.
    if not (isinstance(inst, IliasSource) and inst.polled and inst.enabled and inst.api):
        return None
    r = resources.ledger().r
    # One poll at a time per instance, even with several beats or a slow ILIAS.
    lock = r.lock(keys.ilias_poll_lock(inst.instance), timeout=600, blocking=False)
    if not lock.acquire():
        return None
    try:
        result = poll(IliasSoap(inst.api.url), resources.ledger(), inst, utcnow(), enqueue)
    finally:
        lock.release()
    log.info(
        "ilias_poll",
        installation=inst.name,
        since=result.since,
        completions=result.completions,
        new=result.new,
    )
    if result.rejected:
        log.warning("ilias_rows_rejected", installation=inst.name, rows=result.rejected)
    return result.model_dump()


@app.task(name="gradesync.sweep", ignore_result=True)
def sweep_task() -> int:
    s = resources.settings()
    cost = REQUESTS_PER_COMPLETION[s.coachview_delivery]
    stalls = StallCheck(
        after=timedelta(seconds=s.stall_after_s),
        max_stalls=s.max_stalls,
        queue_empty=broker_queue_empty,
    )
    capacity = resources.budget().capacity(cost) if cost else None  # None: no REST limit
    sent = sweep(resources.ledger(), utcnow(), enqueue, capacity, stalls)

    if sent:
        log.warning("sweep", resent=sent)
    return sent
