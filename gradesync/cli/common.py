"""Shared by every command area: the consoles, the ledger and broker handles, and the
helpers that more than one area uses."""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from gradesync.ledger import Ledger
from gradesync.record import Record
from gradesync.settings import get_settings

# Piped output is read by people too: don't squeeze tables to 80 columns. No markup: ids, marks
# and Coachview's error pages are outside text ("[/]" in an id broke `show`, "[link=…]" became a
# link); styles are given as Text objects instead.
out = Console(highlight=False, markup=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, markup=False)


JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def operator() -> str:
    """Who runs this command, for the record's history: the login name (USER, LOGNAME)."""
    return os.environ.get("USER") or os.environ.get("LOGNAME") or getpass.getuser()


ByOption = Annotated[
    str | None,
    typer.Option("--by", help="Who does this, kept in the record's history (default: $USER)"),
]


# The command modules call these two as ``common.ledger()`` and ``common.send``: replaced here,
# a test's fake ledger or broker reaches every command.
def ledger() -> Ledger:
    from workers import resources  # deferred: Celery loads in a second; --help needs none of it

    return resources.ledger()


def send(rid: str) -> None:
    """Hand a recorded completion to the workers' broker (what producers are given)."""
    from workers.pipeline import enqueue  # deferred, as above

    enqueue(rid)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        err.print(f"cannot read {path}: {exc.strerror}")
        raise typer.Exit(2) from exc


def find(ledger: Ledger, key: str) -> Record:
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


def disabled_names() -> list[str]:
    return [i.name for i in get_settings().sources.installations if not i.enabled]


def print_disabled(names: list[str]) -> None:
    if names:
        out.print(
            f"disabled (enabled: false): {', '.join(names)}; their webhooks get 503 "
            "(Retry-After) and their queued records wait"
        )


def parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(
            "expected a date (2026-11-01) or ISO 8601 time", param_hint="--since"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=get_settings().tz)
