"""Read-only look-ups: ``doctor`` (the configuration) and ``diagnose`` (one record in Coachview)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from gradesync.cli import common
from gradesync.cli.common import JsonFlag, emit_json, err, find, out
from gradesync.diagnose import diagnose as look_up
from gradesync.doctor.celery_checks import QUEUE_THRESHOLD
from gradesync.doctor.runner import diagnose
from gradesync.errors import RemoteError
from gradesync.report import FIXES
from gradesync.settings import get_settings

_MARKS = {"ok": Text("✓", "green"), "warn": Text("!", "yellow"), "fail": Text("✗", "red")}


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
        rec = find(common.ledger(), key)
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
        emit_json({"key": rec.id, **found.model_dump()})
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


def doctor(
    queue_threshold: Annotated[
        int, typer.Option(help="Messages waiting in the queue before it counts as backing up")
    ] = QUEUE_THRESHOLD,
    as_json: JsonFlag = False,
) -> None:
    """Check the live configuration, read-only; exit 0 only when no required check fails."""

    found = diagnose(queue_threshold=queue_threshold)
    if as_json:
        emit_json(found.model_dump() | {"healthy": found.healthy})
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
