"""Reconciliation's rules, without I/O: which window a pass covers, which learners it asks the
LMS about, what each answer means, when the cursor moves, when the next run is, and how many
completions no webhook delivered.

A *pass* covers every course once. A run works on the pass under way until the per-run cap on
LMS calls stops it; the next run resumes it (course by course, learner by learner, from the
resume point stored after each answer). Only when every course is done does the cursor move to
the time the pass began, so a capped pass never skips a completion.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from gradesync.completion_time import MoodleCompletionStatus, moodle_completion_instant
from gradesync.event import CompletionEvent

# How long a found completion counts toward "no webhook delivered it" (a healthy week shows 0).
WEEK = timedelta(days=7)

# "no_criteria": the course has no completion criteria, so no learner of it can complete.
Verdict = Literal["record", "incomplete", "before_window", "left", "no_criteria"]


class Pass(BaseModel):
    """The pass under way: its window's start, when it began, and how far it got."""

    started: datetime
    since: datetime
    done: list[str] = Field(default_factory=list)
    # Per LMS course id: the last learner (LMS user id) whose answer was taken.
    resume: dict[str, str] = Field(default_factory=dict)
    # Per LMS course id the LMS refused to read (hidden, a capability missing): its error code.
    failed: dict[str, str] = Field(default_factory=dict)


class State(BaseModel):
    # When the last complete pass began: the next pass looks from here, less the overlap.
    cursor: datetime | None = None
    current: Pass | None = None
    # The window's start of a pass that ended with a course unread: the next pass looks from
    # no later, so that course's completions are still looked for once Moodle answers.
    hold: datetime | None = None


class Summary(BaseModel):
    """One run, as status, doctor, metrics and the console show it."""

    installation: str
    at: datetime
    since: datetime
    dry_run: bool = False
    # Every course of the pass is done (the cursor moved); False: the cap stopped it.
    finished: bool = False
    calls: int = 0
    courses: int = 0
    courses_done: int = 0
    unknown_courses: int = 0
    checked: int = 0
    recorded: int = 0
    # Found completed but already in the ledger meanwhile (a webhook raced the run).
    held: int = 0
    tombstoned: int = 0
    before_window: int = 0
    # Learners the LMS lists but will not answer for: their enrolment ended (see README).
    left: int = 0
    # Which (``course/user``, LMS ids): the operator checks Moodle's completion report for them.
    left_learners: list[str] = Field(default_factory=list)
    # The LMS's error code when it failed mid-run (the next run resumes).
    error: str | None = None
    # Courses the LMS refused to read (``course: error code``): skipped, the others go on; the
    # cursor does not move past them.
    failed_courses: list[str] = Field(default_factory=list)
    # In a dry run: the completions a real run would record (``course/user``).
    would_record: list[str] = Field(default_factory=list)


def window_start(
    cursor: datetime | None,
    now: datetime,
    overlap: timedelta,
    first_window: timedelta,
    since: datetime | None = None,
) -> datetime:
    """Where a new pass looks from: ``since`` when given, else the cursor less the overlap (the
    completion cron runs late, clocks drift), else (the first pass) ``first_window`` ago."""
    if since is not None:
        return since
    if cursor is None:
        return now - first_window
    return cursor - overlap


def begin(
    state: State,
    now: datetime,
    overlap: timedelta,
    first_window: timedelta,
    since: datetime | None = None,
) -> Pass:
    """The pass to work on: the one under way (a capped run continues it), or a new one. An
    explicit ``since`` always starts a new pass over that window."""
    if state.current is not None and since is None:
        return state.current
    start = window_start(state.cursor, now, overlap, first_window, since)
    if since is None and state.hold is not None:
        start = min(start, state.hold)
    return Pass(started=now, since=start)


def after(state: State, current: Pass, every_course_done: bool) -> State:
    """The state a run leaves: the cursor moves only when the whole pass is done and no course
    was refused; a pass that ended with one refused holds its window's start for the next."""
    if not every_course_done:
        return State(cursor=state.cursor, current=current, hold=state.hold)
    if current.failed:
        return State(cursor=state.cursor, current=None, hold=current.since)
    return State(cursor=current.started, current=None)


def to_ask(learners: Iterable[str], resume_after: str | None, skip: Iterable[str]) -> list[str]:
    """The learners of one course still to ask about, in the LMS's id order: after the resume
    point, and not those whose answer is already known (held in the ledger, purged by an
    operator, or completed before any window)."""
    known = set(skip)
    ordered = sorted(set(learners), key=_id_order)
    if resume_after is not None:
        ordered = [u for u in ordered if _id_order(u) > _id_order(resume_after)]
    return [u for u in ordered if u not in known]


def removed(open_before: Iterable[str], listed: Iterable[str], known: Iterable[str]) -> list[str]:
    """Learners answered "not complete" (or "left") before and no longer listed at all: their
    enrolment was deleted. Moodle keeps their course completion, but no web service function
    reads it; named so an operator can look (those the ledger holds meanwhile are not)."""
    gone = set(open_before) - set(listed) - set(known)
    return sorted(gone, key=_id_order)


def _id_order(user_id: str) -> tuple[int, str]:
    # Moodle ids are numbers: 9 comes before 10. Anything else after them, as text.
    return (int(user_id), "") if user_id.isascii() and user_id.isdigit() else (1 << 62, user_id)


def verdict(
    status: MoodleCompletionStatus | None, since: datetime, now: datetime
) -> tuple[Verdict, datetime | None]:
    """What the LMS's answer means. ``None``: it would not answer (the learner left the course).
    The completion instant is the LMS's own (the criteria's times, see
    :func:`gradesync.completion_time.moodle_completion_instant`); when Moodle gives none, the
    moment reconciliation found it."""
    if status is None:
        return "left", None
    if not status.completed and not status.completions:
        # Moodle answers a course without criteria so (nocriteriaset), never a learner's state.
        return "no_criteria", None
    if not status.completed:
        return "incomplete", None
    instant = moodle_completion_instant(status, now).at
    if instant < since:
        return "before_window", instant
    return "record", instant


def event_for(instance: str, course_id: str, user_id: str, at: datetime) -> CompletionEvent:
    """The completion as a webhook would have carried it: the same key (the LMS's user and
    course ids), its own event id naming where it came from."""
    return CompletionEvent.model_validate(
        {
            "source": "moodle",
            "source_instance": instance,
            "event_id": f"moodle-{instance}-reconciled-{course_id}-{user_id}-{int(at.timestamp())}",
            "person_id": user_id,
            "course_id": course_id,
            "completed_at": at,
        }
    )


def is_reconciled(event_id: str) -> bool:
    return "-reconciled-" in event_id


def next_run(at: time, now: datetime, tz: ZoneInfo) -> datetime:
    """The next time of day ``at`` in ``tz`` after ``now`` (beat's crontab, as an instant)."""
    local = now.astimezone(tz)
    candidate = datetime.combine(local.date(), at, tzinfo=tz)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=tz)
    return candidate.astimezone(UTC)


class Found(BaseModel):
    """A completion reconciliation recorded: when the LMS says it happened, when it was found."""

    completed: datetime
    found: datetime


def missed_by_webhook(
    found: Mapping[str, Found],
    webhook_came: Iterable[str],
    now: datetime,
    grace: timedelta,
) -> list[str]:
    """The found completions no webhook delivered: completed more than ``grace`` ago (Moodle
    raises its completion event from cron, sometimes hours late), found within the last week,
    and no webhook for them since. A healthy week shows none."""
    came = set(webhook_came)
    return sorted(
        rid
        for rid, f in found.items()
        if rid not in came and f.completed <= now - grace and f.found >= now - WEEK
    )
