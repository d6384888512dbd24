"""The ``gradesync`` command line (contract v1: every command accepts ``--json``)."""

from __future__ import annotations

import csv
import getpass
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import httpx
import redis
import typer
import uvicorn
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from coachview_sim.app import create_app as create_sim
from coachview_sim.store import Seed
from gradesync import held, logs, simdata, stackenv
from gradesync import show as shown
from gradesync.demo import run
from gradesync.diagnose import diagnose as look_up
from gradesync.doctor.celery_checks import QUEUE_THRESHOLD
from gradesync.doctor.runner import diagnose
from gradesync.errors import RemoteError
from gradesync.ledger import Ledger, utcnow
from gradesync.printable import printable
from gradesync.reconcile.figures import Figures, figures
from gradesync.record import RETRYABLE, STATES, Record, Unreadable
from gradesync.report import FIXES, build, installation_counts, selects, write_csv
from gradesync.settings import ConfigurationError, get_settings, redacted_url
from gradesync.sources import InstallationDisabled, InstallationUnknown
from gradesync.stack import up
from gradesync.transitions import MAX_REASON_CHARS
from gradesync.usage import Rate, Usage, budget_figure, usage
from producers.api import create_app
from producers.backfill import run_backfill
from producers.intake import Intake
from producers.reader import NotText, decode, read_items

app = typer.Typer(
    help="Write LMS course completions back into Coachview.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output is read by people too: don't squeeze tables to 80 columns. No markup: ids, marks
# and Coachview's error pages are outside text ("[/]" in an id broke `show`, "[link=…]" became a
# link); styles are given as Text objects instead.
out = Console(highlight=False, markup=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, markup=False)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _operator() -> str:
    """Who runs this command, for the record's history: the login name (USER, LOGNAME)."""
    return os.environ.get("USER") or os.environ.get("LOGNAME") or getpass.getuser()


ByOption = Annotated[
    str | None,
    typer.Option("--by", help="Who does this, kept in the record's history (default: $USER)"),
]


def _ledger() -> Ledger:
    from workers import resources  # deferred: Celery loads in a second; --help needs none of it

    return resources.ledger()


def _send(rid: str) -> None:
    """Hand a recorded completion to the workers' broker (what producers are given)."""
    from workers.pipeline import enqueue  # deferred, as above

    enqueue(rid)


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        err.print(f"cannot read {path}: {exc.strerror}")
        raise typer.Exit(2) from exc


@app.command()
def enqueue(
    file: Annotated[str, typer.Argument(help="A JSON object, JSON array or NDJSON; - for stdin")],
    source: Annotated[
        str | None,
        typer.Option(help="Native format: moodle, ilias (LPData XML too), anewspring, xapi"),
    ] = None,
    instance: Annotated[
        str | None,
        typer.Option(
            help="The installation a native payload is from (default: the kind's "
            "default route); canonical events name their own, checked against the sources"
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Record completion events and queue them for delivery to Coachview."""

    if instance is not None and source in (None, "canonical"):
        raise typer.BadParameter("only with --source (a canonical event names its own)")
    try:
        intake = Intake.for_source(source, _ledger(), get_settings(), _send, instance)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--source") from exc
    except (InstallationUnknown, InstallationDisabled) as exc:
        raise typer.BadParameter(str(exc), param_hint="--instance") from exc
    data = _read_input(file)
    try:
        if source == "ilias" and data.lstrip().startswith(b"<"):
            lines = intake.take(1, decode(data))
        else:
            lines = [
                line
                for item in read_items(data)
                for line in intake.take(item.position, item.data, item.error)
            ]
    except NotText as exc:
        err.print(f"{file}: {exc}")
        raise typer.Exit(2) from exc
    for line in lines:
        if as_json:
            _emit_json(line)
        else:
            out.print(intake.describe(line))
    raise typer.Exit(1 if any(line["outcome"] == "rejected" for line in lines) else 0)


@app.command()
def backfill(
    file: Annotated[Path, typer.Argument(help="CSV with the canonical event's columns")],
    rejects: Annotated[
        Path | None, typer.Option(help="Where rejected rows go (default: FILE.rejected.csv)")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Load historical completions from a CSV file, with a progress bar and a summary."""

    rejects = rejects or file.with_suffix(".rejected.csv")
    # Checked first: the rejected rows are written after the good ones went in.
    if not os.access(rejects.parent, os.W_OK) or rejects.is_dir():
        raise typer.BadParameter(f"cannot write {rejects}", param_hint="--rejects")
    intake = Intake.for_source(None, _ledger(), get_settings(), _send)
    try:
        summary = run_backfill(file, rejects, intake, progress=not as_json)
    except OSError as exc:
        err.print(f"cannot read {file}: {exc.strerror or exc}")
        raise typer.Exit(2) from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        err.print(f"{file} is not a UTF-8 CSV file: {type(exc).__name__}")
        raise typer.Exit(2) from exc
    except ValueError as exc:  # e.g. the required columns are missing
        err.print(str(exc))
        raise typer.Exit(2) from exc
    if as_json:
        _emit_json(summary.model_dump())
    else:
        out.print(
            f"{summary.rows} rows: {summary.accepted} accepted "
            f"({summary.duplicates} already known), {summary.rejected} rejected"
            + (f" → {rejects}" if summary.rejected else "")
        )
    raise typer.Exit(1 if summary.rejected else 0)


@app.command()
def api(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Run the HTTP ingress for LMS webhooks."""

    try:
        ingress = create_app(None, _send)
    except ConfigurationError as exc:
        err.print(f"gradesync api refuses to start: {exc}", soft_wrap=True)
        raise typer.Exit(2) from exc
    trusted = get_settings().trusted_proxies
    # X-Forwarded-For only from the proxies named: uvicorn otherwise believes any local caller,
    # and the console's per-address login limit would count whatever address it was told.
    uvicorn.run(
        ingress,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )


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


@app.command("retry-due")
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
    result = run_retry_pass(_ledger(), moment, get_settings().retry_max_attempts)
    if as_json:
        _emit_json(result.model_dump())
    else:
        out.print(f"re-enqueued {result.requeued}, given up {result.given_up}")


class _Bar:
    """Reconciliation's progress, course by course, as a Rich bar on stderr."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.task = bar.add_task("reconcile: courses", total=None)

    def courses(self, total: int) -> None:
        self.bar.update(self.task, total=total)

    def course_done(self) -> None:
        self.bar.advance(self.task)


@app.command()
def reconcile(
    installation: Annotated[
        str, typer.Option(help="KIND/INSTANCE, e.g. moodle/default", show_default=False)
    ],
    since: Annotated[
        str | None,
        typer.Option(help="Look from this date (default: the last run less the overlap)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Ask the LMS, record nothing, move nothing")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Ask the LMS which learners completed the courses Coachview knows; record what no webhook
    delivered (the same run beat makes nightly)."""
    from workers import reconcile as rec  # deferred: Celery

    kind, slash, instance = installation.partition("/")
    if not slash or not kind or not instance:
        raise typer.BadParameter("expected KIND/INSTANCE", param_hint="--installation")
    moment = _parse_since(since)
    if moment is not None and moment > utcnow():
        raise typer.BadParameter("lies in the future", param_hint="--since")
    try:
        inst = rec.installation(kind, instance)
        with Progress(console=err, transient=True, disable=as_json) as bar:
            summary = rec.reconcile(inst, since=moment, dry_run=dry_run, progress=_Bar(bar))
    except (InstallationUnknown, rec.NotReconcilable) as exc:
        raise typer.BadParameter(str(exc), param_hint="--installation") from exc
    except rec.Busy as exc:
        err.print(str(exc))
        raise typer.Exit(1) from exc
    except RemoteError as exc:
        # The LMS's text: printed as it is, never read as Rich markup.
        err.print(
            f"{inst.name}: {exc} ({exc.code}); the next run resumes where this one stopped",
            markup=False,
        )
        raise typer.Exit(1) from exc
    if as_json:
        _emit_json(summary.model_dump(mode="json"))
        return
    done = (
        "stopped by the call cap; the next run resumes"
        if not summary.finished
        else f"{len(summary.failed_courses)} refused by the LMS"
        if summary.failed_courses
        else "every course done"
    )
    out.print(
        f"{summary.installation}: since {summary.since.isoformat(timespec='minutes')}, "
        f"{summary.courses_done}/{summary.courses} course(s) ({done}), {summary.calls} LMS "
        f"call(s), {summary.checked} learner(s) asked, "
        + (
            f"{len(summary.would_record)} would be recorded"
            if dry_run
            else f"{summary.recorded} recorded"
        )
        + f", {summary.left} left their course (not readable), {summary.unknown_courses} "
        "Coachview course id(s) unknown to the LMS"
    )
    if summary.left_learners:
        out.print(
            "left before their completion could be read (course/user, Moodle ids; see Moodle's "
            "course completion report): " + ", ".join(summary.left_learners)
        )
    if summary.failed_courses:
        out.print(
            "refused by the LMS (course: error; the token's role in the course, or a hidden "
            "course): " + ", ".join(summary.failed_courses)
        )


def _installation_table(counts: dict[str, dict[str, int]]) -> Table:
    """Records per installation, one column per state that any installation has."""
    states = [s for s in STATES if any(s in row for row in counts.values())]
    table = Table("installation", *states, title="per installation")
    for name, row in counts.items():
        table.add_row(name, *(str(row.get(s, 0)) for s in states))
    return table


@app.command()
def status(as_json: JsonFlag = False) -> None:
    """Records per state, today's Coachview requests per completion, and the budget left."""
    from workers import resources  # deferred: Celery

    counts: dict[str, Any] = dict(_ledger().counts())
    # Every configured installation, those without records too: an operator checks its name.
    configured: dict[str, dict[str, int]] = {
        inst.name: {} for inst in get_settings().sources.installations
    }
    per_installation = configured | installation_counts(_ledger())
    disabled = _disabled()
    budget = resources.budget()
    today = usage(_ledger(), budget, utcnow(), get_settings().tz)
    reconciliation = figures(_ledger(), get_settings(), utcnow())
    if as_json:
        _emit_json(
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
    _print_disabled(disabled)
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


def _disabled() -> list[str]:
    return [i.name for i in get_settings().sources.installations if not i.enabled]


def _print_disabled(names: list[str]) -> None:
    if names:
        out.print(
            f"disabled (enabled: false): {', '.join(names)}; their webhooks get 503 "
            "(Retry-After) and their queued records wait"
        )


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


@app.command("list")
def list_records(
    state: Annotated[str | None, typer.Option(help=f"One of: {', '.join(STATES)}")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Records, newest first."""
    if state is not None and state not in STATES:
        raise typer.BadParameter(f"unknown state {state!r}; one of: {', '.join(STATES)}")
    ledger = _ledger()
    records = ledger.newest(state, limit)
    if as_json:
        _emit_json(
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
    _print_disabled(_disabled())
    if any(isinstance(r, Unreadable) for r in records):
        err.print(
            "Some records cannot be read by this version (fields named above); "
            "`gradesync purge --unreadable` removes them."
        )


def _find(ledger: Ledger, key: str) -> Record:
    """The record an operator names, or a clear message and exit 1."""
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as exc:  # bytes from argv that are not UTF-8
        err.print("that key is not UTF-8 text; copy it from `gradesync list`")
        raise typer.Exit(1) from exc
    try:
        rec = ledger.find(key)
    except (LookupError, ValueError) as exc:  # ambiguous event id, unreadable record
        err.print(str(exc))
        raise typer.Exit(1) from exc
    if rec is None:
        err.print(f"no record for {key!r}")
        raise typer.Exit(1)
    return rec


@app.command()
def show(
    key: Annotated[str, typer.Argument(help="Record key, completion key text, or event id")],
    as_json: JsonFlag = False,
) -> None:
    """One record with its history."""
    ledger = _ledger()
    rec = _find(ledger, key)
    data = rec.public(ledger.steps(rec.id)) | {"history": ledger.history(rec.id)}
    if as_json:
        _emit_json(data)
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


@app.command("diagnose")
def diagnose_record(
    key: Annotated[str, typer.Argument(help="Record key, completion key text, or event id")],
    as_json: JsonFlag = False,
) -> None:
    """Which of person, course and enrolment Coachview lacks for one record (either delivery
    mode). Read-only REST look-ups, counted against the daily budget; writes nothing.
    Exit 0: Coachview can place it (a retry should deliver); 1: something is missing (named);
    2: cannot tell (no such record, or Coachview did not answer)."""
    from workers import resources  # deferred: Celery

    try:
        rec = _find(_ledger(), key)
    except typer.Exit:
        raise typer.Exit(2) from None
    s = get_settings()
    try:
        found = look_up(
            resources.coachview(),
            rec.coachview_person_id,
            s.person_match_for(rec.event.source, rec.event.source_instance),
            rec.coachview_course_id,
        )
    except RemoteError as exc:
        err.print(f"cannot tell: Coachview answered {exc.code}: {exc.message}")
        raise typer.Exit(2) from exc
    if as_json:
        _emit_json({"key": rec.id, **found.model_dump()})
    else:
        marks: dict[bool | None, Text | str] = {
            True: _MARKS["ok"],
            False: _MARKS["fail"],
            None: "-",
        }
        table = Table("look-up", "", "detail")
        for check in found.checks:
            table.add_row(check.what, marks[check.found], check.detail)
        out.print(table)
        if found.missing is None:
            out.print(f"Coachview can place it: `gradesync retry {rec.id}` delivers it.")
        else:
            out.print(f"missing: {found.missing}: {FIXES[found.missing]}")
    raise typer.Exit(0 if found.missing is None else 1)


def _operator_change(key: str, change: str, as_json: bool, by: str, **kwargs: Any) -> None:
    ledger = _ledger()
    rec = _find(ledger, key)
    try:
        if change == "retry":
            updated = ledger.retry_now(rec.id, utcnow(), by=by)
            _send(updated.id)
        else:
            updated = ledger.give_up_now(rec.id, utcnow(), kwargs["reason"], by=by)
    except ValueError as exc:
        err.print(f"{rec.id}: {exc}")
        raise typer.Exit(1) from exc
    if as_json:
        _emit_json(updated.public(ledger.steps(updated.id)))
    else:
        out.print(f"{updated.id} {updated.state}")


@app.command()
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
        _operator_change(key, "retry", as_json, by or _operator())
        return
    if state is None:
        raise typer.BadParameter("give a KEY, or --state S", param_hint="KEY")
    if state == "queued":
        _release_held(reason, person, course, as_json)
        return
    if state not in RETRYABLE:
        raise typer.BadParameter(f"one of: {', '.join(RETRYABLE)}, queued", param_hint="--state")
    _bulk_retry(state, reason, person, course, as_json, by or _operator())


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
        _ledger(),
        get_settings().sources,
        utcnow(),
        lambda rec: selects(rec, reason, person, course),
    )
    if as_json:
        _emit_json(
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

    ledger = _ledger()
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
                _send(rid)
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
        _emit_json(result)
        return
    out.print(
        f"queued {len(queued)} of {len(chosen)} matching {state} record(s)"
        + (f"; {result['skipped']} had moved on" if result["skipped"] else "")
    )
    if unreadable:
        err.print(f"{unreadable} unreadable record(s) skipped: see `gradesync report`")


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(
            "expected a date (2026-11-01) or ISO 8601 time", param_hint="--since"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=get_settings().tz)


NOTHING_TO_FIX = "nothing unresolved, failed, given up or waiting on an installation"


@app.command()
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
    found = build(_ledger(), _parse_since(since), s.retry_max_attempts, s.tz)
    try:
        lines = write_csv(found, csv_file, excel) if csv_file is not None else None
    except OSError as exc:
        err.print(f"cannot write {csv_file}: {exc.strerror or exc}")
        raise typer.Exit(2) from exc
    if as_json:
        _emit_json(found.model_dump(mode="json"))
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


@app.command("give-up")
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
    _operator_change(key, "give-up", as_json, by or _operator(), reason=reason)


MAX_AS_OF_DRIFT = timedelta(days=31)
# Records still waiting or running are never purged: that would lose a completion.
PURGEABLE = ("delivered", "given_up", "failed", "not_passed", "withdrawn")
# A century: anything longer is a typo, and would overflow the date arithmetic.
MAX_RETENTION_DAYS = 36_500


@app.command()
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
    ledger = _ledger()
    if unreadable:
        removed = [r.id for r in ledger.newest(limit=10**9) if isinstance(r, Unreadable)]
        for rid in removed:
            ledger.remove_unreadable(rid)
        if as_json:
            _emit_json({"removed_unreadable": removed})
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
        _emit_json({"purged": purged})
    else:
        out.print(f"purged {purged} record(s) older than {older_than} days in {', '.join(states)}")


_MARKS = {"ok": Text("✓", "green"), "warn": Text("!", "yellow"), "fail": Text("✗", "red")}


@app.command()
def doctor(
    queue_threshold: Annotated[
        int, typer.Option(help="Messages waiting in the queue before it counts as backing up")
    ] = QUEUE_THRESHOLD,
    as_json: JsonFlag = False,
) -> None:
    """Check the live configuration, read-only; exit 0 only when no required check fails."""

    found = diagnose(queue_threshold=queue_threshold)
    if as_json:
        _emit_json(found.model_dump() | {"healthy": found.healthy})
    else:
        table = Table("area", "check", "", "detail", "what to do")
        for c in found.checks:
            table.add_row(c.area, c.name, _MARKS[c.status], c.detail, c.fix)
        out.print(table)
        fails = sum(c.status == "fail" for c in found.checks)
        warns = sum(c.status == "warn" for c in found.checks)
        out.print(
            f"{fails} failed, {warns} warning(s); "
            f"{found.coachview_requests} Coachview request(s) spent from today's budget"
        )
    raise typer.Exit(0 if found.healthy else 1)


stack_app = typer.Typer(help="The whole system on this machine, without Docker.")
app.add_typer(stack_app, name="stack")


@stack_app.command("up")
def stack_up(
    api_port: Annotated[int, typer.Option(help="Another free one if taken")] = 8000,
    sim_port: Annotated[int, typer.Option(help="Another free one if taken")] = 8100,
    flower_port: Annotated[int, typer.Option(help="Another free one if taken")] = 5555,
    redis_port: Annotated[int, typer.Option(help="Another free one if taken")] = 6379,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start with an empty ledger (removes .local/redis)")
    ] = False,
) -> None:
    """Start redis-server, the simulator (demo data), api, worker, beat and Flower; write
    .local/stack.env for the gradesync commands of other terminals."""

    wanted = {"redis": redis_port, "sim": sim_port, "api": api_port, "flower": flower_port}
    up(Path.cwd(), wanted, fresh, out)


@app.command()
def demo(
    api_url: Annotated[
        str, typer.Option(envvar="GRADESYNC_API_URL", help="The ingress (the stack's)")
    ] = "http://127.0.0.1:8000",
    sim_url: Annotated[
        str | None, typer.Option(help="The simulator (default: COACHVIEW_BASE_URL)")
    ] = None,
) -> None:
    """Push sample completions from every LMS through a running stack; show what happened."""

    settings = get_settings()
    url = sim_url or settings.coachview_base_url
    raise typer.Exit(run(api_url, url, _ledger(), settings, out))


sim_data_app = typer.Typer(
    help="Fix the simulator's data as you would Coachview's (the stack's simulator: "
    "COACHVIEW_BASE_URL)."
)
app.add_typer(sim_data_app, name="sim-data")


def _sim_change(build: Callable[[simdata.Data], simdata.Data]) -> None:
    url = get_settings().coachview_base_url
    try:
        fragment = build(simdata.fetch(url))
        simdata.send(url, fragment)
    except simdata.SimDataError as exc:
        err.print(str(exc))
        raise typer.Exit(1) from exc
    except httpx.HTTPError as exc:
        err.print(f"no simulator answered at {url} ({type(exc).__name__}): is the stack up?")
        raise typer.Exit(2) from exc
    out.print(f"done: {json.dumps(fragment, ensure_ascii=False)}")


@sim_data_app.command("show")
def sim_data_show() -> None:
    """Persons, trainings with their components' e-learning codes, and enrolments."""
    url = get_settings().coachview_base_url
    try:
        data = simdata.fetch(url)
    except httpx.HTTPError as exc:
        err.print(f"no simulator answered at {url} ({type(exc).__name__}): is the stack up?")
        raise typer.Exit(2) from exc
    for line in simdata.describe(data):
        out.print(line)


@sim_data_app.command("person")
def sim_data_person(
    extern_id: Annotated[str, typer.Argument(help="The LMS person id (Coachview: extern id)")],
    first_name: Annotated[str, typer.Option()] = "",
    last_name: Annotated[str, typer.Option()] = "",
) -> None:
    """Add a person whose external id is the LMS person id."""
    _sim_change(lambda data: simdata.add_person(data, extern_id, first_name, last_name))


@sim_data_app.command("enrol")
def sim_data_enrol(
    extern_id: Annotated[str, typer.Argument(help="The person's external id (LMS person id)")],
    training: Annotated[int, typer.Argument(help="The training's id (sim-data show)")],
) -> None:
    """Enrol a person on a training (on each of its components)."""
    _sim_change(lambda data: simdata.enrol(data, extern_id, training))


@sim_data_app.command("course")
def sim_data_course(
    component: Annotated[int, typer.Argument(help="The component's id (sim-data show)")],
    course_id: Annotated[str, typer.Argument(help="The LMS course id (its e-learning code)")],
) -> None:
    """Put the LMS course id on a training's e-learning component."""
    _sim_change(lambda data: simdata.set_course(data, component, course_id))


@app.command()
def sim(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8100,
    seed: Annotated[
        Path | None, typer.Option(help="A /_sim/seed JSON file to load at start")
    ] = None,
) -> None:
    """Run the Coachview simulator."""

    application = create_sim()
    if seed is not None:
        application.state.sim.store.seed(Seed.model_validate_json(seed.read_text()))
    uvicorn.run(application, host=host, port=port, log_level="warning")


def main() -> None:
    if sys.argv[1:2] != ["stack"]:  # the stack writes the file; it never reads an old one
        told = stackenv.apply(os.environ, Path.cwd())
        if told is not None:
            err.print(told, soft_wrap=True)
    if sys.argv[1:2] == ["doctor"]:
        # The doctor reports an environment the settings refuse, instead of refusing to start.
        app()
        return
    settings = get_settings()

    logs.configure(settings.log_level, settings.log_format)

    try:
        app()
    except redis.ConnectionError as exc:
        err.print(f"cannot reach Redis at {redacted_url(settings.redis_url)}: {exc}")
        err.print("Is redis-server running? (gradesync stack up starts one.)")
        raise SystemExit(2) from exc
    except redis.RedisError as exc:  # e.g. a database index the server does not have
        err.print(f"Redis at {redacted_url(settings.redis_url)} refused: {exc}")
        raise SystemExit(2) from exc
    except httpx.ConnectError as exc:
        err.print(f"cannot connect: {exc} — is the stack running? (gradesync stack up)")
        raise SystemExit(2) from exc
