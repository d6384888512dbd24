"""Which installations reconciliation runs for, and each one's settings: its ``reconcile``
block in the sources file, else the ``GRADESYNC_RECONCILE_*`` defaults."""

from __future__ import annotations

from datetime import time, timedelta

from pydantic import BaseModel

from gradesync.settings import Settings
from gradesync.sources import AnyInstallation, MoodleSource


class Effective(BaseModel):
    at: time
    max_calls: int
    overlap: timedelta
    first_window: timedelta
    grace: timedelta


def reconcilable(installations: list[AnyInstallation]) -> list[MoodleSource]:
    """Moodle installations that are enabled, have a web service API and reconciliation on.
    (aNewSpring: see README — its public API lists results per learner, not per course.)"""
    return [
        i
        for i in installations
        if isinstance(i, MoodleSource) and i.enabled and i.api is not None and i.reconcile.enabled
    ]


def effective(inst: MoodleSource, s: Settings) -> Effective:
    return Effective(
        at=inst.reconcile.at or s.reconcile_at,
        max_calls=inst.reconcile.max_calls or s.reconcile_max_calls,
        overlap=timedelta(hours=s.reconcile_overlap_h),
        first_window=timedelta(days=s.reconcile_first_days),
        grace=timedelta(hours=s.reconcile_grace_h),
    )
