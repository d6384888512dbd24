"""Reconciliation per installation: when it last ran, when it runs next, and whether it found
completions no webhook delivered this week (the webhook is then broken)."""

from __future__ import annotations

from datetime import datetime, timedelta

from gradesync.doctor.model import Check, ok, warn
from gradesync.ledger import Ledger
from gradesync.reconcile.figures import figures
from gradesync.settings import ConfigurationError, Settings

AREA = "reconcile"
# A nightly job not seen for this long: beat is not running it.
OVERDUE = timedelta(hours=48)


def check(ledger: Ledger, s: Settings, now: datetime) -> list[Check]:
    checks: list[Check] = []
    try:
        rows = figures(ledger, s, now)
    except ConfigurationError:
        return []  # the sources check names every problem
    for f in rows:
        name = f"{f.installation} reconciliation"
        nxt = f"next run {f.next_run.isoformat(timespec='minutes')}"
        run = f.last_run
        if f.refused is not None:
            checks.append(
                warn(
                    AREA,
                    f"{name}: courses",
                    f.refused,
                    "the web service user's role in those courses (see README, Reconciliation)",
                )
            )
        if f.warning is not None:
            checks.append(warn(AREA, name, f.warning, "the Moodle webhook plugin's settings"))
        elif run is None:
            checks.append(ok(AREA, name, f"not run yet; {nxt}"))
        elif run.error is not None:
            checks.append(
                warn(
                    AREA,
                    name,
                    f"last run {run.at.isoformat(timespec='minutes')} broke off: the LMS failed "
                    f"({run.error}); {nxt} resumes it",
                    "the LMS's availability and its web service token",
                )
            )
        elif run.at < now - OVERDUE:
            checks.append(
                warn(
                    AREA,
                    name,
                    f"last run {run.at.isoformat(timespec='minutes')} — more than two days ago",
                    "celery -A workers beat must run (it schedules reconciliation)",
                )
            )
        else:
            resumes = "" if run.finished else " (stopped by the call cap; resumes)"
            checks.append(
                ok(
                    AREA,
                    name,
                    f"last run {run.at.isoformat(timespec='minutes')}: {run.recorded} recorded, "
                    f"{run.calls} LMS calls{resumes}; none this week without a webhook; {nxt}",
                )
            )
    return checks
