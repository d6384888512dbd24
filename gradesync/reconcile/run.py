"""One reconciliation run of one installation: ask the LMS about the courses Coachview knows,
record what the ledger lacks, within a cap on LMS calls, resumable (rules: :mod:`.plan`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from gradesync import logs
from gradesync.completion_time import MoodleCompletionStatus
from gradesync.errors import Permanent, RemoteError
from gradesync.ledger import Ledger
from gradesync.parsed import NEEDS_GRADE
from gradesync.reconcile import plan
from gradesync.reconcile.plan import Found, Summary
from gradesync.reconcile.store import FOUND_KEPT, Store
from gradesync.sources import MoodleSource
from gradesync.submit import submit

log = logs.get("gradesync.reconcile")
CHANNEL = "reconciled"


class Lms(Protocol):
    """What a run asks an LMS (see gradesync/lms/moodle_reconcile.py); ``calls`` counts every
    request made, which the run keeps under its cap."""

    calls: int

    def course_ids(self, codes: Sequence[str]) -> dict[str, str]:
        """Coachview's e-learning course ids → the LMS's own course ids (those it has)."""
        ...

    def learners(self, course_id: str) -> list[str]:
        """The course's learners (LMS user ids), those whose enrolment ended included."""
        ...

    def status(self, course_id: str, user_id: str) -> MoodleCompletionStatus | None:
        """The learner's completion; ``None``: the LMS will not answer (not enrolled now)."""
        ...


class Progress(Protocol):
    def courses(self, total: int) -> None: ...
    def course_done(self) -> None: ...


class _Silent:
    def courses(self, total: int) -> None:
        pass

    def course_done(self) -> None:
        pass


def run(
    inst: MoodleSource,
    lms: Lms,
    codes: Sequence[str],
    ledger: Ledger,
    send: Callable[[str], None],
    now: datetime,
    *,
    max_calls: int,
    overlap: timedelta,
    first_window: timedelta,
    since: datetime | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    keepalive: Callable[[], None] = lambda: None,
) -> Summary:
    """One run. A dry run asks the same but records nothing and moves nothing. ``keepalive`` is
    called after every LMS answer (the worker renews its lock there)."""
    bar = progress or _Silent()
    store = Store(ledger, inst.name)
    state = store.state()
    current = plan.begin(state, now, overlap, first_window, since)
    current = current.model_copy(deep=True)
    summary = Summary(installation=inst.name, at=now, since=current.since, dry_run=dry_run)
    courses: list[str] = []

    def checkpoint() -> None:
        # Stored after every answer, not only at the end: a run killed with -9 runs no
        # ``finally``, and the next one resumes from here.
        keepalive()
        if not dry_run:
            store.save(plan.after(state, current, every_course_done=False))

    try:
        # Inside the ``try``: a Moodle failing at its first call (a wrong token, down) still
        # leaves a run with its error for status and doctor.
        mapping = lms.course_ids(codes) if codes else {}
        courses = sorted(set(mapping.values()), key=_course_order)
        summary.courses = len(courses)
        summary.unknown_courses = len(set(codes) - set(mapping))
        todo = [c for c in courses if c not in current.done and c not in current.failed]
        bar.courses(len(courses))
        for _ in range(len(courses) - len(todo)):
            bar.course_done()
        for course in todo:
            if lms.calls >= max_calls:
                break
            try:
                worked = _course(
                    inst, lms, course, current, store, send, summary, max_calls, dry_run, checkpoint
                )
            except Permanent as exc:
                # This course answers the same every night (hidden, a capability missing, a
                # malformed list): the others must not wait behind it.
                current.failed[course] = exc.code
                worked = True
            if not worked:
                break
            if course not in current.failed:
                current.done.append(course)
            current.resume.pop(course, None)
            checkpoint()
            bar.course_done()
    except RemoteError as exc:
        # The LMS failed mid-pass: what was answered stays answered (resume points are kept).
        summary.error = exc.code
        raise
    finally:
        summary.courses_done = len([c for c in courses if c in current.done])
        summary.failed_courses = [f"{c}: {code}" for c, code in sorted(current.failed.items())]
        summary.finished = summary.error is None and summary.courses_done + len(
            current.failed
        ) == len(courses)
        summary.calls = lms.calls
        if not dry_run:
            store.save(plan.after(state, current, summary.finished))
            store.remember(summary)
            _prune_found(store, now)
    log.info(
        "reconcile",
        installation=inst.name,
        finished=summary.finished,
        calls=summary.calls,
        courses=summary.courses,
        recorded=summary.recorded,
        left=summary.left,
        dry_run=dry_run,
    )
    return summary


def _course(
    inst: MoodleSource,
    lms: Lms,
    course: str,
    current: plan.Pass,
    store: Store,
    send: Callable[[str], None],
    summary: Summary,
    max_calls: int,
    dry_run: bool,
    checkpoint: Callable[[], None],
) -> bool:
    """Work through one course; ``False`` when the cap stopped it (its resume point is kept)."""
    learners = lms.learners(course)
    _removed(inst, course, learners, store, summary, dry_run)
    skip = store.known(inst.kind, inst.instance, course, learners) | store.settled(
        course, current.since
    )
    for user in plan.to_ask(learners, current.resume.get(course), skip):
        if lms.calls >= max_calls:
            return False
        answer = lms.status(course, user)
        summary.checked += 1
        verdict, instant = plan.verdict(answer, current.since, summary.at)
        if verdict == "no_criteria":
            # The same for every learner of the course: asking the others would only cost calls.
            return True
        if verdict == "record" and instant is not None:
            _record(inst, course, user, instant, store, send, summary, dry_run)
        elif verdict == "before_window" and instant is not None and not dry_run:
            store.settle(course, user, instant)
        summary.before_window += verdict == "before_window"
        if verdict == "left":
            summary.left += 1
            summary.left_learners.append(f"{course}/{user}")
        if not dry_run:
            if verdict in ("incomplete", "left"):
                store.mark_open(course, user)
            else:
                store.close(course, [user])
        current.resume[course] = user
        checkpoint()
    return True


def _removed(
    inst: MoodleSource,
    course: str,
    learners: list[str],
    store: Store,
    summary: Summary,
    dry_run: bool,
) -> None:
    """Learners Moodle no longer lists since their last answer (their enrolment was deleted):
    named once, as having left."""
    before = store.open_learners(course)
    gone = sorted(before - set(learners))
    known = store.known(inst.kind, inst.instance, course, gone) if gone else set()
    for user in plan.removed(before, learners, known):
        summary.left += 1
        summary.left_learners.append(f"{course}/{user} (enrolment deleted)")
    if not dry_run:
        store.close(course, gone)


def _record(
    inst: MoodleSource,
    course: str,
    user: str,
    instant: datetime,
    store: Store,
    send: Callable[[str], None],
    summary: Summary,
    dry_run: bool,
) -> None:
    event = plan.event_for(inst.instance, course, user, instant)
    rid = event.key.id
    if store.tombstoned(rid):
        summary.tombstoned += 1
        return
    if dry_run:
        summary.would_record.append(f"{course}/{user}")
        return
    admission = submit(event, store.ledger, send, (NEEDS_GRADE,), channel=CHANNEL)
    if admission.outcome != "created":
        summary.held += 1  # a webhook (or another run) recorded it meanwhile
        return
    summary.recorded += 1
    store.ledger.note(rid, summary.at, "reconciled", source=CHANNEL, since=_iso(summary.since))
    store.found(rid, Found(completed=instant, found=summary.at))


def _prune_found(store: Store, now: datetime) -> None:
    old = [rid for rid, f in store.all_found().items() if f.found < now - FOUND_KEPT]
    store.forget_found(old)


def _course_order(course_id: str) -> tuple[int, str]:
    return (
        (int(course_id), "")
        if course_id.isascii() and course_id.isdigit()
        else (1 << 62, course_id)
    )


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")
