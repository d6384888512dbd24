"""Today's Coachview REST requests per delivered completion, and how many more completions the
budget left carries at that rate, in all and per delivery mode (`gradesync status`).

"Today" is the budget's window: from the local count's start (24 h from the first request after
the last window ended), or from midnight when nothing was sent yet. Requests are the local count
(gradesync/coachview/budget.py), so a worker's last few not yet shared may be missing.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

import redis
from pydantic import BaseModel

from gradesync.coachview.budget import Budget
from gradesync.ledger import Ledger
from gradesync.record import Record
from gradesync.settings import Settings

RESULT_LINK = "resultlink"
# The budget as every view gives it (status, doctor, the console): what is left for deliveries
# (above the reserve kept for an operator's own look-ups), the reserve, and the day's limit.
BUDGET_FIGURE = "{left} requests left above the reserve of {reserve} (daily limit {limit})"


def budget_figure(remaining: int, reserve: int, limit: int) -> str:
    """``remaining``: as Coachview or the local count says, the reserve included."""
    return BUDGET_FIGURE.format(left=max(0, remaining - reserve), reserve=reserve, limit=limit)


class Rate(BaseModel):
    requests: int
    delivered: int
    # None: nothing delivered yet, no rate to tell.
    per_completion: float | None
    # At that rate, what the budget left carries; None: no rate, or no REST request per
    # completion (the result link): the REST budget does not limit it.
    projected_left: int | None


class ModeRate(Rate):
    mode: str


class Usage(Rate):
    since: datetime
    resets: datetime | None
    remaining: int  # requests left above the reserve
    remaining_by: Literal["coachview headers", "local count"]
    daily_limit: int
    reserve: int
    modes: list[ModeRate]


def _rate(requests: int, delivered: int, remaining: int, rest_free: bool) -> Rate:
    """``rest_free``: these deliveries need no REST request (the result link). For any other,
    none counted means none counted yet in this window (it ended, or the count started after
    them), not a free delivery."""
    per = requests / delivered if delivered and (requests or rest_free) else None
    return Rate(
        requests=requests,
        delivered=delivered,
        per_completion=None if per is None else round(per, 3),
        projected_left=int(remaining / per) if per else None,
    )


def budget_for(client: redis.Redis, s: Settings) -> Budget:
    """The budget as the workers keep it: the console and `gradesync status` read the same
    figures (a console with the default limit once showed another number)."""
    return Budget(
        client,
        s.coachview_budget_reserve,
        daily_limit=s.coachview_daily_limit,
        window_s=s.coachview_budget_window_s,
    )


def usage(ledger: Ledger, budget: Budget, now: datetime, tz: ZoneInfo) -> Usage:
    sent = budget.sent()
    if sent is not None:
        since = datetime.fromtimestamp(sent["started"], UTC)
        resets: datetime | None = datetime.fromtimestamp(sent["resets"], UTC)
        total, by_mode = int(sent["total"]), dict(sent["by_mode"])
    else:
        since = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
        resets, total, by_mode = None, 0, {}
    delivered = Counter(
        rec.delivery or "unrecorded"
        for rec in ledger.load_many(ledger.ids("delivered", since))
        if isinstance(rec, Record)
    )
    snapshot = budget.snapshot()
    if snapshot is not None:
        remaining = max(0, snapshot["remaining"] - budget.reserve)
        remaining_by: Literal["coachview headers", "local count"] = "coachview headers"
    else:
        remaining = max(0, budget.daily_limit - budget.reserve - total)
        remaining_by = "local count"
    modes = [
        ModeRate(
            mode=mode,
            **_rate(
                by_mode.get(mode, 0), delivered[mode], remaining, mode == RESULT_LINK
            ).model_dump(),
        )
        for mode in sorted(by_mode.keys() | delivered.keys())
    ]
    only_result_link = set(delivered) <= {RESULT_LINK}
    return Usage(
        since=since,
        resets=resets,
        remaining=remaining,
        remaining_by=remaining_by,
        daily_limit=budget.daily_limit,
        reserve=budget.reserve,
        modes=modes,
        **_rate(total, delivered.total(), remaining, only_result_link).model_dump(),
    )
