"""What each console page shows, read from the ledger and the Coachview budget (no HTTP here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gradesync.coachview.budget import Budget
from gradesync.ledger import Ledger
from gradesync.record import STATES, Record, Unreadable
from gradesync.report import Group, group_records, installation_counts, selects

ATTENTION_STATES = ("unresolved", "failed", "given_up")
RETRYABLE = frozenset(ATTENTION_STATES)
# "Nearly spent": this share of the day's limit or less is left above the reserve.
BUDGET_ALERT_SHARE = 0.1
ROWS_PER_GROUP = 50
SEARCH_LIMIT = 100


@dataclass
class BudgetView:
    used: int
    left: int
    limit: int
    reset_at: datetime
    # At today's requests per delivered completion, how many completions a day's budget carries.
    projected_per_day: int | None
    nearly_spent: bool


@dataclass
class Overview:
    counts: dict[str, int]
    delivered_today: int
    delivered_week: int
    budget: BudgetView | None
    oldest_unresolved: Record | None
    # Records needing attention per installation (``kind/instance``) and state.
    installations: dict[str, dict[str, int]] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)


def _day_start(now: datetime, tz: ZoneInfo) -> datetime:
    return datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)


def _budget(snapshot: dict[str, Any] | None, delivered_today: int) -> BudgetView | None:
    if snapshot is None:
        return None
    limit, used, reserve = snapshot["limit"], snapshot["used"], snapshot["reserve"]
    left = max(0, snapshot["remaining"] - reserve)
    per_completion = used / delivered_today if delivered_today and used else None
    projected = None if per_completion is None else int((limit - reserve) / per_completion)
    return BudgetView(
        used=used,
        left=left,
        limit=limit,
        reset_at=datetime.fromisoformat(snapshot["reset_at"]),
        projected_per_day=projected,
        nearly_spent=left <= limit * BUDGET_ALERT_SHARE,
    )


def overview(ledger: Ledger, budget: Budget, now: datetime, tz: ZoneInfo) -> Overview:
    today = _day_start(now, tz)
    week = today - timedelta(days=today.weekday())
    delivered_today = ledger.counts_since(today)["delivered"]
    oldest = None
    for rec in ledger.load_many(ledger.ids("unresolved")[:1]):
        oldest = rec if isinstance(rec, Record) else None
    view = Overview(
        counts=ledger.counts(),
        delivered_today=delivered_today,
        delivered_week=ledger.counts_since(week)["delivered"],
        budget=_budget(budget.snapshot(), delivered_today),
        oldest_unresolved=oldest,
        # Only the states that need attention: those are few, delivered ones are not.
        installations=installation_counts(ledger, states=ATTENTION_STATES),
    )
    if view.counts.get("failed"):
        view.alerts.append("alert_failed")
    if view.budget is not None and view.budget.nearly_spent:
        view.alerts.append("alert_budget")
    return view


def attention(ledger: Ledger, max_retries: int, tz: ZoneInfo) -> list[Group]:
    """Unresolved, failed and given-up records grouped by what to fix (report.py's groups)."""
    records = (rec for state in ATTENTION_STATES for rec in ledger.load_many(ledger.ids(state)))
    return group_records(records, max_retries, tz)


def group_ids(ledger: Ledger, reason: str) -> list[str]:
    """The retryable records whose last error is ``reason`` (a group's "retry now")."""
    return [
        rec.id
        for state in ATTENTION_STATES
        for rec in ledger.load_many(ledger.ids(state))
        if isinstance(rec, Record) and selects(rec, reason, None, None)
    ]


def search(ledger: Ledger, text: str) -> tuple[list[Record], bool]:
    """By record key, completion key text or event id (one record), else every record whose
    LMS or Coachview-side person or course id is ``text``. Returns the records (newest change
    first, at most SEARCH_LIMIT) and whether more matched."""
    text = text.strip()
    if not text:
        return [], False
    try:
        found = ledger.find(text)
    except (LookupError, ValueError):
        # An event id of several sources (the scan below lists them all), or unreadable.
        found = None
    if found is not None:
        return [found], False
    hits: list[Record] = []
    for state in STATES:
        for rec in ledger.load_many(ledger.ids(state)):
            if isinstance(rec, Unreadable):
                continue
            ids = (rec.event.person_id, rec.coachview_person_id, rec.event.course_id)
            if text in ids or text in (rec.coachview_course_id, rec.event.id):
                hits.append(rec)
    hits.sort(key=lambda r: r.updated, reverse=True)
    return hits[:SEARCH_LIMIT], len(hits) > SEARCH_LIMIT
