"""One record or many: ``list``, ``show``, ``retry``, ``retry-due``, ``give-up`` and ``purge``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from gradesync import held
from gradesync import show as shown
from gradesync.cli import common
from gradesync.cli.common import (
    ByOption,
    JsonFlag,
    disabled_names,
    emit_json,
    err,
    find,
    operator,
    out,
    print_disabled,
)
from gradesync.ledger import utcnow
from gradesync.printable import printable
from gradesync.record import RETRYABLE, STATES, Record, Unreadable
from gradesync.report import selects
from gradesync.settings import get_settings
from gradesync.transitions import MAX_REASON_CHARS

MAX_AS_OF_DRIFT = timedelta(days=31)


def _parse_as_of(value: str | None) -> datetime:
    if value is None:
        return utcnow()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter("expected ISO 8601, e.g. 2026-12-01T03:00:00+01:00") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=get_settings().tz)
    # The pass schedules each record's next attempt from this time: a far date would push real
    # records' retries weeks away (or past the calendar's end).
    if abs(moment - utcnow()) > MAX_AS_OF_DRIFT:
        raise typer.BadParameter(
            f"must lie within {MAX_AS_OF_DRIFT.days} days of now", param_hint="--as-of"
        )
    return moment


def retry_due(
    as_of: Annotated[
        str | None,
        typer.Option(help="Run as if it were this time (ISO 8601; naive = GRADESYNC_TIMEZONE)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run the daily retry pass now, as beat does."""
    from workers.schedule import run_retry_pass  # deferred: Celery

    moment = _parse_as_of(as_of)
    result = run_retry_pass(common.ledger(), moment, get_settings().retry_max_attempts)
    if as_json:
        emit_json(result.model_dump())
    else:
        out.print(f"re-enqueued {result.requeued}, given up {result.given_up}")


def _record_row(rec: Record | Unreadable, tz: ZoneInfo) -> list[str]:
    if isinstance(rec, Unreadable):
        return [rec.id, "unreadable", "", "", "", "", "; ".join(rec.problems), ""]
    err_text = f"{rec.last_error.code}" if rec.last_error else ""
    return [
        rec.id,
        rec.state,
        rec.event.source,
        str(rec.attempts),
        str(rec.daily_retries),
        rec.updated.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
        err_text,
        (rec.outcome or {}).get("code", ""),
    ]


def list_records(
    state: Annotated[str | None, typer.Option(help=f"One of: {', '.join(STATES)}")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Records, newest first."""
    if state is not None and state not in STATES:
        raise typer.BadParameter(f"unknown state {state!r}; one of: {', '.join(STATES)}")
    ledger = common.ledger()
    records = ledger.newest(state, limit)
    if as_json:
        emit_json(
            [
                r.public(ledger.steps(r.id))
                if isinstance(r, Record)
                else {"id": r.id, "state": "unreadable", "problems": r.problems}
                for r in records
            ]
        )
        return
    tz = get_settings().tz
    updated = f"updated ({get_settings().timezone})"
    table = Table("key", "state", "source", "attempts", "retries", updated, "error", "outcome")
    for rec in records:
        table.add_row(*_record_row(rec, tz))
    out.print(table)
    print_disabled(disabled_names())
    if any(isinstance(r, Unreadable) for r in records):
        err.print(
            "Some records cannot be read by this version (fields named above); "
            "`gradesync purge --unreadable` removes them."
        )


def show(
    key: Annotated[str, typer.Argument(help="Record key, completion key text, or event id")],
    as_json: JsonFlag = False,
) -> None:
    """One record with its history."""
    ledger = common.ledger()
    rec = find(ledger, key)
    data = rec.public(ledger.steps(rec.id)) | {"history": ledger.history(rec.id)}
    if as_json:
        emit_json(data)
        return
    tz = get_settings().tz
    for name in shown.FIELDS:
        _field(name, shown.value(name, data.get(name), tz))
    # The approval date's instant, and whether it is the event's or the LMS's own record.
    when = shown.value("completed_at", data["event"]["completed_at"], tz)
    _field("completed_at", f"{when} (from {data['completed_at_source']})")
    _field("event", shown.event_text(data["event"]))
    table = Table(f"at ({get_settings().timezone})", "what happened")
    for row in shown.history(data["history"], tz):
        table.add_row(*(printable(cell) for cell in row))
    out.print(table)


def _field(name: str, value: object) -> None:
    """One ``name: value`` line of ``show``; the value stripped of control characters (an
    excerpt stored before they were stripped on the way in)."""
    out.print(Text.assemble((name, "bold"), ": ", printable(str(value))))


def _operator_change(key: str, change: str, as_json: bool, by: str, **kwargs: Any) -> None:
    ledger = common.ledger()
    rec = find(ledger, key)
    try:
        if change == "retry":
            updated = ledger.retry_now(rec.id, utcnow(), by=by)
            common.send(updated.id)
        else:
            updated = ledger.give_up_now(rec.id, utcnow(), kwargs["reason"], by=by)
    except ValueError as exc:
        err.print(f"{rec.id}: {exc}")
        raise typer.Exit(1) from exc
    if as_json:
        emit_json(updated.public(ledger.steps(updated.id)))
    else:
        out.print(f"{updated.id} {updated.state}")


def retry(
    key: Annotated[
        str | None, typer.Argument(help="Record key, completion key text, or event id")
    ] = None,
    state: Annotated[
        str | None,
        typer.Option(
            help=f"Every record in this state: {', '.join(RETRYABLE)}; queued: those waiting "
            "on their installation (--reason installation_disabled / unknown_installation)"
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Only those whose last error is this code")
    ] = None,
    person: Annotated[str | None, typer.Option(help="Only this LMS person id")] = None,
    course: Annotated[str | None, typer.Option(help="Only this LMS course id")] = None,
    by: ByOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Queue an unresolved, failed, given-up or shadowed record again now (e.g. after fixing
    Coachview); with --state, every matching one. A shadowed record is delivered for real, in
    the COACHVIEW_DELIVERY configured now."""
    filters = (reason, person, course)
    if key is not None:
        if state is not None or any(f is not None for f in filters):
            raise typer.BadParameter("give a KEY or --state with filters, not both")
        _operator_change(key, "retry", as_json, by or operator())
        return
    if state is None:
        raise typer.BadParameter("give a KEY, or --state S", param_hint="KEY")
    if state == "queued":
        _release_held(reason, person, course, as_json)
        return
    if state not in RETRYABLE:
        raise typer.BadParameter(f"one of: {', '.join(RETRYABLE)}, queued", param_hint="--state")
    _bulk_retry(state, reason, person, course, as_json, by or operator())


def _release_held(
    reason: str | None, person: str | None, course: str | None, as_json: bool
) -> None:
    """Queued records waiting on an installation that these sources know enabled: due now (the
    next sweep sends them) instead of at their 15-minute recheck."""
    if reason is not None and reason not in held.HELD_CODES:
        raise typer.BadParameter(
            f"queued records are retried only while held for their installation: "
            f"{' or '.join(held.HELD_CODES)}",
            param_hint="--reason",
        )
    released = held.release_held(
        common.ledger(),
        get_settings().sources,
        utcnow(),
        lambda rec: selects(rec, reason, person, course),
    )
    if as_json:
        emit_json(
            {"released": len(released.ids), "still_held": released.still_held, "ids": released.ids}
        )
        return
    out.print(
        f"released {len(released.ids)} waiting record(s): the next sweep (beat, every "
        "GRADESYNC_SWEEP_INTERVAL_S) sends them"
    )
    if released.still_held:
        err.print(
            f"{released.still_held} still held: their installation is disabled or unknown in "
            "these sources (GRADESYNC_SOURCES); enable it and restart the workers"
        )


def _bulk_retry(
    state: str, reason: str | None, person: str | None, course: str | None, as_json: bool, by: str
) -> None:

    ledger = common.ledger()
    chosen: list[str] = []
    unreadable = 0
    for rec in ledger.load_many(ledger.ids(state)):
        if isinstance(rec, Unreadable):
            unreadable += 1
        elif selects(rec, reason, person, course):
            chosen.append(rec.id)
    queued: list[str] = []
    with Progress(disable=as_json or not chosen, transient=True) as bar:
        task = bar.add_task("queueing", total=len(chosen))
        for rid in chosen:
            try:
                ledger.retry_now(rid, utcnow(), by=by)
            except (LookupError, ValueError):
                pass  # moved on since it was read (delivered, purged, retried by someone else)
            else:
                common.send(rid)
                queued.append(rid)
            bar.advance(task)
    result = {
        "matched": len(chosen),
        "queued": len(queued),
        "skipped": len(chosen) - len(queued),
        "unreadable": unreadable,
        "ids": queued,
    }
    if as_json:
        emit_json(result)
        return
    out.print(
        f"queued {len(queued)} of {len(chosen)} matching {state} record(s)"
        + (f"; {result['skipped']} had moved on" if result["skipped"] else "")
    )
    if unreadable:
        err.print(f"{unreadable} unreadable record(s) skipped: see `gradesync report`")


def give_up(
    key: Annotated[str, typer.Argument(help="Record key, completion key text, or event id")],
    reason: Annotated[str, typer.Option(help="Why; kept in the record's last_error")],
    by: ByOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Stop retrying a record, with a reason."""
    if not reason.strip() or len(reason) > MAX_REASON_CHARS:
        raise typer.BadParameter(
            f"1 to {MAX_REASON_CHARS} printable characters", param_hint="--reason"
        )
    _operator_change(key, "give-up", as_json, by or operator(), reason=reason)


# Records still waiting or running are never purged: that would lose a completion.
PURGEABLE = ("delivered", "given_up", "failed", "not_passed", "withdrawn")


# A century: anything longer is a typo, and would overflow the date arithmetic.
MAX_RETENTION_DAYS = 36_500


def purge(
    older_than: Annotated[
        int | None,
        typer.Option(help="Days since the record last changed", min=1, max=MAX_RETENTION_DAYS),
    ] = None,
    state: Annotated[
        list[str] | None, typer.Option(help="States to purge (default: delivered, given_up)")
    ] = None,
    unreadable: Annotated[
        bool, typer.Option("--unreadable", help="Remove records this version cannot read")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete closed records and their history after a retention period (GDPR/AVG)."""

    if older_than is None and not unreadable:
        raise typer.BadParameter(
            "give --older-than DAYS, or --unreadable", param_hint="--older-than"
        )
    states = tuple(state or ("delivered", "given_up"))
    bad = [s for s in states if s not in PURGEABLE]
    if bad:
        raise typer.BadParameter(
            f"{', '.join(bad)}: only closed records are purged ({', '.join(PURGEABLE)})",
            param_hint="--state",
        )
    ledger = common.ledger()
    if unreadable:
        removed = [r.id for r in ledger.newest(limit=10**9) if isinstance(r, Unreadable)]
        for rid in removed:
            ledger.remove_unreadable(rid)
        if as_json:
            emit_json({"removed_unreadable": removed})
        else:
            out.print(f"removed {len(removed)} unreadable record(s): {' '.join(removed)}")
    if older_than is None:
        return
    ids = ledger.purgeable(utcnow() - timedelta(days=older_than), states)
    purged = 0
    with Progress(disable=as_json or not ids, transient=True) as bar:
        task = bar.add_task("purging", total=len(ids))
        for rid in ids:
            purged += ledger.purge(rid, states)
            bar.advance(task)
    if as_json:
        emit_json({"purged": purged})
    else:
        out.print(f"purged {purged} record(s) older than {older_than} days in {', '.join(states)}")
