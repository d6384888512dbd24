"""What each console page shows, read from the ledger and the Coachview budget (no HTTP here)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from gradesync.coachview.budget import Budget
from gradesync.ledger import Ledger
from gradesync.record import STATES, Record, Unreadable
from gradesync.report import Group, group_records, installation_counts, selects
from gradesync.usage import Usage, usage

ATTENTION_STATES = ("unresolved", "failed", "given_up")
# A shadowed record is delivered for real by a retry (in the delivery configured now).
RETRYABLE = frozenset((*ATTENTION_STATES, "shadowed"))
# "Nearly spent": this share of the day's limit or less is left above the reserve.
BUDGET_ALERT_SHARE = 0.1
ROWS_PER_GROUP = 50
SEARCH_LIMIT = 100


@dataclass
class Overview:
    counts: dict[str, int]
    delivered_today: int
    delivered_week: int
    # The figure `gradesync status` gives: requests left above the reserve, and the reserve.
    budget: Usage
    oldest_unresolved: Record | None
    # Records needing attention per installation (``kind/instance``) and state.
    installations: dict[str, dict[str, int]] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)


def _day_start(now: datetime, tz: ZoneInfo) -> datetime:
    return datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)


def overview(ledger: Ledger, budget: Budget, now: datetime, tz: ZoneInfo) -> Overview:
    today = _day_start(now, tz)
    week = today - timedelta(days=today.weekday())
    oldest = None
    for rec in ledger.load_many(ledger.ids("unresolved")[:1]):
        oldest = rec if isinstance(rec, Record) else None
    view = Overview(
        counts=ledger.counts(),
        delivered_today=ledger.counts_since(today)["delivered"],
        delivered_week=ledger.counts_since(week)["delivered"],
        budget=usage(ledger, budget, now, tz),
        oldest_unresolved=oldest,
        # Only the states that need attention: those are few, delivered ones are not.
        installations=installation_counts(ledger, states=ATTENTION_STATES),
    )
    if view.counts.get("failed"):
        view.alerts.append("alert_failed")
    if view.budget.remaining <= view.budget.daily_limit * BUDGET_ALERT_SHARE:
        view.alerts.append("alert_budget")
    return view


def _needing_data(ledger: Ledger) -> Iterator[Record | Unreadable]:
    """Unresolved, failed and given-up records, and shadowed ones a real delivery could not
    have placed (what to fix before delivery starts); not those the trial run got through."""
    for state in ATTENTION_STATES:
        yield from ledger.load_many(ledger.ids(state))
    for rec in ledger.load_many(ledger.ids("shadowed")):
        if isinstance(rec, Unreadable) or rec.last_error is not None:
            yield rec


def attention(ledger: Ledger, max_retries: int, tz: ZoneInfo) -> list[Group]:
    """The records needing attention grouped by what to fix (report.py's groups)."""
    return group_records(_needing_data(ledger), max_retries, tz)


def group_ids(ledger: Ledger, reason: str) -> list[str]:
    """The retryable records whose last error is ``reason`` (a group's "retry now")."""
    return [
        rec.id
        for rec in _needing_data(ledger)
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


def advice(reason: str, t: Callable[..., str]) -> str:
    """What to change in Coachview or the LMS for records with this last error."""
    key = f"fix_{reason}"
    text = t(key)
    return t("fix_other") if text == key else text
