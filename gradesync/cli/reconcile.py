"""``reconcile``: ask the LMS which learners completed, with a progress bar."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress

from gradesync.cli.common import JsonFlag, emit_json, err, out, parse_since
from gradesync.errors import RemoteError
from gradesync.ledger import utcnow
from gradesync.sources import InstallationUnknown


class _Bar:
    """Reconciliation's progress, course by course, as a Rich bar on stderr."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.task = bar.add_task("reconcile: courses", total=None)

    def courses(self, total: int) -> None:
        self.bar.update(self.task, total=total)

    def course_done(self) -> None:
        self.bar.advance(self.task)


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
    moment = parse_since(since)
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
        emit_json(summary.model_dump(mode="json"))
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
