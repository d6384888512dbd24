"""Completions in: ``enqueue`` (one payload or a file of events) and ``backfill`` (a CSV)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Annotated

import typer

from gradesync.cli import common
from gradesync.cli.common import JsonFlag, emit_json, err, out, read_input
from gradesync.settings import get_settings
from gradesync.sources import InstallationDisabled, InstallationUnknown
from producers.backfill import run_backfill
from producers.intake import Intake
from producers.reader import NotText, decode, read_items


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
        intake = Intake.for_source(source, common.ledger(), get_settings(), common.send, instance)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--source") from exc
    except (InstallationUnknown, InstallationDisabled) as exc:
        raise typer.BadParameter(str(exc), param_hint="--instance") from exc
    data = read_input(file)
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
            emit_json(line)
        else:
            out.print(intake.describe(line))
    raise typer.Exit(1 if any(line["outcome"] == "rejected" for line in lines) else 0)


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
    intake = Intake.for_source(None, common.ledger(), get_settings(), common.send)
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
        emit_json(summary.model_dump())
    else:
        out.print(
            f"{summary.rows} rows: {summary.accepted} accepted "
            f"({summary.duplicates} already known), {summary.rejected} rejected"
            + (f" → {rejects}" if summary.rejected else "")
        )
    raise typer.Exit(1 if summary.rejected else 0)
