"""Per installation: the last run, the next, and how many completions reconciliation found that
no webhook delivered — what ``gradesync status``, /metrics, doctor and the console show."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from gradesync.ledger import Ledger
from gradesync.reconcile import plan
from gradesync.reconcile.config import effective, reconcilable
from gradesync.reconcile.plan import Summary
from gradesync.reconcile.store import Store
from gradesync.settings import Settings


class Figures(BaseModel):
    installation: str
    last_run: Summary | None
    next_run: datetime
    # Found by reconciliation, completed more than the grace period ago, no webhook since,
    # within the last week: 0 when the webhook works.
    missed_by_webhook: int
    grace_h: float

    @property
    def warning(self) -> str | None:
        if self.missed_by_webhook == 0:
            return None
        return (
            f"{self.installation}: {self.missed_by_webhook} completion(s) this week reached "
            "gradesync only by reconciliation — the webhook is not delivering (check the "
            "plugin's URL, secret and Moodle's cron)"
        )

    @property
    def refused(self) -> str | None:
        """Courses Moodle would not let the last pass read: their completions wait for a fix."""
        failed = self.last_run.failed_courses if self.last_run is not None else []
        if not failed:
            return None
        return (
            f"{self.installation}: Moodle refused to read {len(failed)} course(s) "
            f"({', '.join(failed)}); their completions are looked for again each night, from "
            "the same start, until it answers"
        )


def figures(ledger: Ledger, s: Settings, now: datetime) -> list[Figures]:
    out: list[Figures] = []
    for inst in reconcilable(s.sources.installations):
        cfg = effective(inst, s)
        store = Store(ledger, inst.name)
        found = store.all_found()
        recent = {rid: f for rid, f in found.items() if f.found >= now - plan.WEEK}
        missed = plan.missed_by_webhook(recent, store.webhook_came(recent), now, cfg.grace)
        out.append(
            Figures(
                installation=inst.name,
                last_run=store.last(),
                next_run=plan.next_run(cfg.at, now, s.tz),
                missed_by_webhook=len(missed),
                grace_h=cfg.grace.total_seconds() / 3600,
            )
        )
    return out
