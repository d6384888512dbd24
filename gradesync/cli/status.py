"""The whole picture: ``status`` (states, installations, budget, reconciliation) and ``report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gradesync.cli import common
from gradesync.cli.common import (
    JsonFlag,
    disabled_names,
    emit_json,
    err,
    out,
    parse_since,
    print_disabled,
)
from gradesync.ledger import utcnow
from gradesync.reconcile.figures import Figures, figures
from gradesync.record import STATES
from gradesync.report import build, installation_counts, write_csv
from gradesync.settings import get_settings
from gradesync.usage import Rate, Usage, budget_figure, usage


def _installation_table(counts: dict[str, dict[str, int]]) -> Table:
    """Records per installation, one column per state that any installation has."""
    states = [s for s in STATES if any(s in row for row in counts.values())]
    table = Table("installation", *states, title="per installation")
    for name, row in counts.items():
        table.add_row(name, *(str(row.get(s, 0)) for s in states))
    return table


def status(as_json: JsonFlag = False) -> None:
    """Records per state, today's Coachview requests per completion, and the budget left."""
    from workers import resources  # deferred: Celery

    counts: dict[str, Any] = dict(common.ledger().counts())
    # Every configured installation, those without records too: an operator checks its name.
    configured: dict[str, dict[str, int]] = {
        inst.name: {} for inst in get_settings().sources.installations
    }
    per_installation = configured | installation_counts(common.ledger())
    disabled = disabled_names()
    budget = resources.budget()
    today = usage(common.ledger(), budget, utcnow(), get_settings().tz)
    reconciliation = figures(common.ledger(), get_settings(), utcnow())
    if as_json:
        emit_json(
            counts
            | {
                "installations": per_installation,
                "disabled_installations": disabled,
                "budget": budget.snapshot(),
                "today": today.model_dump(mode="json"),
                "reconciliation": [f.model_dump(mode="json") for f in reconciliation],
            }
        )
        return
    table = Table("state", "records")
    for state, n in counts.items():
        table.add_row(state, str(n))
    out.print(table)
    out.print(_installation_table(per_installation))
    print_disabled(disabled)
    _print_usage(today)
    _print_reconciliation(reconciliation)


def _print_reconciliation(rows: list[Figures]) -> None:
    if not rows:
        return
    table = Table(
        "installation", "last run", "next run", "found, no webhook (7 days)", title="reconciliation"
    )
    for f in rows:
        last = f.last_run
        text = (
            "never"
            if last is None
            else (
                f"{last.at.isoformat(timespec='minutes')}: {last.recorded} recorded, "
                f"{last.calls} calls"
                + (
                    ""
                    if last.finished
                    else f", LMS failed ({last.error}), resumes"
                    if last.error
                    else ", resumes"
                )
            )
        )
        table.add_row(
            f.installation, text, f.next_run.isoformat(timespec="minutes"), str(f.missed_by_webhook)
        )
    out.print(table)
    for f in rows:
        for warning in (f.warning, f.refused):
            if warning:
                err.print(f"warning: {warning}")


def _per(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _left(rate: Rate) -> str:
    if rate.projected_left is not None:
        return str(rate.projected_left)
    return "no REST limit" if rate.per_completion == 0 else "-"


def _print_usage(today: Usage) -> None:
    until = today.resets.isoformat(timespec="minutes") if today.resets else "-"
    out.print(
        f"Coachview REST requests since {today.since.isoformat(timespec='minutes')} "
        f"(the budget's window, until {until}): {today.requests} for {today.delivered} "
        f"completion(s) delivered, {_per(today.per_completion)} per completion"
    )
    by = (
        "Coachview's headers"
        if today.remaining_by == "coachview headers"
        else f"the local count against COACHVIEW_DAILY_LIMIT {today.daily_limit}"
    )
    figure = budget_figure(today.remaining + today.reserve, today.reserve, today.daily_limit)
    out.print(f"Budget: {figure}, by {by}: about {_left(today)} more completion(s) at today's rate")
    if today.modes:
        table = Table("mode", "REST requests", "delivered", "per completion", "completions left")
        for m in today.modes:
            table.add_row(
                m.mode, str(m.requests), str(m.delivered), _per(m.per_completion), _left(m)
            )
        out.print(table)


NOTHING_TO_FIX = "nothing unresolved, failed, given up or waiting on an installation"


def report(
    since: Annotated[
        str | None,
        typer.Option(help="Only records changed since this date (GRADESYNC_TIMEZONE)"),
    ] = None,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Also write one line per record here")
    ] = None,
    excel: Annotated[
        bool,
        typer.Option(
            "--excel", help="The CSV for Dutch Excel: semicolons and a UTF-8 byte-order mark"
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Counts per state, and unresolved/given-up records grouped by what to fix in Coachview."""

    s = get_settings()
    found = build(common.ledger(), parse_since(since), s.retry_max_attempts, s.tz)
    try:
        lines = write_csv(found, csv_file, excel) if csv_file is not None else None
    except OSError as exc:
        err.print(f"cannot write {csv_file}: {exc.strerror or exc}")
        raise typer.Exit(2) from exc
    if as_json:
        emit_json(found.model_dump(mode="json"))
        return
    counts = Table("state", "records")
    for name, n in found.counts.items():
        counts.add_row(name, str(n))
    out.print(counts)
    out.print(_installation_table(found.installations))
    groups = Table(
        "reason",
        "records",
        "given up",
        "shadowed",
        "distinct",
        "oldest",
        "days left",
        "installations",
        "to fix",
    )
    for g in found.groups:
        groups.add_row(
            g.reason,
            str(g.count),
            str(g.given_up),
            str(g.shadowed),
            str(g.distinct),
            str(g.oldest_completion or ""),
            str(g.days_left),
            ", ".join(f"{name} {n}" for name, n in g.installations.items()),
            g.what_to_fix,
        )
    out.print(groups if found.groups else NOTHING_TO_FIX)
    if found.would_deliver:
        out.print(
            f"{found.would_deliver} shadowed record(s) would be delivered as they are "
            "(their writes: `gradesync show KEY`); once COACHVIEW_DELIVERY is rest or "
            "resultlink, `gradesync retry --state shadowed` delivers them"
        )
    if lines is not None:
        out.print(f"{lines} record(s) written to {csv_file}")
