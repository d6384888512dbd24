"""Reconciliation as beat runs it (one entry per installation, nightly by default) and as
``gradesync reconcile`` runs it: one run at a time per installation, under a Redis lock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from redis.exceptions import LockError

from gradesync import logs
from gradesync.errors import RemoteError
from gradesync.ledger import utcnow
from gradesync.lms.moodle import MoodleWS
from gradesync.lms.moodle_reconcile import MoodleReconciler
from gradesync.reconcile.config import effective, reconcilable
from gradesync.reconcile.plan import Summary
from gradesync.reconcile.run import Progress, run
from gradesync.reconcile.store import LOCK_S, Store
from gradesync.sources import MoodleSource
from workers import resources
from workers.app import app
from workers.pipeline import enqueue

log = logs.get("gradesync.reconcile")


class NotReconcilable(ValueError):
    """Not a Moodle installation with an API and reconciliation on (or disabled)."""


class Busy(RuntimeError):
    """Another run of this installation holds the lock."""


def installation(kind: str, instance: str) -> MoodleSource:
    inst = resources.settings().sources.find(kind, instance)  # InstallationUnknown: named
    for candidate in reconcilable([inst]):
        return candidate
    raise NotReconcilable(
        f"{inst.name} is not reconciled: reconciliation needs an enabled Moodle installation "
        "with api (url and credential) and reconcile.enabled (aNewSpring: see README)"
    )


def reconcile(
    inst: MoodleSource,
    *,
    since: datetime | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    send: Callable[[str], None] = enqueue,
) -> Summary:
    s = resources.settings()
    assert inst.api is not None  # reconcilable() checked it
    cfg = effective(inst, s)
    lock = Store(resources.ledger(), inst.name).lock()
    if not lock.acquire():
        raise Busy(
            f"{inst.name}: another reconciliation run is under way (a killed run's lock frees "
            f"itself within {LOCK_S} s)"
        )

    def keepalive() -> None:
        try:
            lock.reacquire()
        except LockError as exc:  # no answer for LOCK_S: another run may hold it by now
            raise Busy(f"{inst.name}: the run lost its lock (an LMS call took too long)") from exc

    try:
        # The courses Coachview knows, read once per run through the shared request budget.
        codes = (
            list(inst.reconcile.courses)
            if inst.reconcile.courses is not None
            else resources.coachview().elearning_codes()
        )
        keepalive()  # Coachview's read may have been paced by its rate limit
        lms = MoodleReconciler(MoodleWS(str(inst.api.url), inst.api.secret()), inst.course_field)
        return run(
            inst,
            lms,
            codes,
            resources.ledger(),
            send,
            utcnow(),
            max_calls=cfg.max_calls,
            overlap=cfg.overlap,
            first_window=cfg.first_window,
            since=since,
            dry_run=dry_run,
            progress=progress,
            keepalive=keepalive,
        )
    finally:
        if lock.owned():
            lock.release()


@app.task(name="gradesync.reconcile", ignore_result=True)
def reconcile_task(kind: str = "moodle", instance: str = "default") -> dict[str, object] | None:
    try:
        inst = installation(kind, instance)
        summary = reconcile(inst)
    except (NotReconcilable, Busy) as exc:
        log.warning("reconcile", installation=f"{kind}/{instance}", outcome=str(exc))
        return None
    except RemoteError as exc:  # the LMS failed: the next night resumes where this run stopped
        log.warning(
            "reconcile", installation=f"{kind}/{instance}", outcome="lms_error", code=exc.code
        )
        return None
    return summary.model_dump(mode="json")
