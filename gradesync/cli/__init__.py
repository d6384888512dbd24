"""The ``gradesync`` command line (contract v1: every command accepts ``--json``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import redis
import typer

from gradesync import logs, stackenv
from gradesync.cli import checks, intake, reconcile, records, stackcmds, status
from gradesync.cli.common import err
from gradesync.settings import get_settings, redacted_url

app = typer.Typer(
    help="Write LMS course completions back into Coachview.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# In the order --help lists them.
app.command()(intake.enqueue)
app.command()(intake.backfill)
app.command()(stackcmds.api)
app.command("retry-due")(records.retry_due)
app.command()(reconcile.reconcile)
app.command()(status.status)
app.command("list")(records.list_records)
app.command()(records.show)
app.command("diagnose")(checks.diagnose_record)
app.command()(records.retry)
app.command()(status.report)
app.command("give-up")(records.give_up)
app.command()(records.purge)
app.command()(checks.doctor)
app.command()(stackcmds.demo)
app.command()(stackcmds.sim)
app.add_typer(stackcmds.stack_app, name="stack")
app.add_typer(stackcmds.sim_data_app, name="sim-data")


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
