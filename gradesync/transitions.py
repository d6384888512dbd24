"""What each event, pipeline outcome or operator command does to a ledger record: pure
functions ``(record as stored or None, inputs, now) -> (Change, answer)``, no I/O.

gradesync/ledger.py applies a :class:`Change` atomically (the record, its indexes, history,
outbox and event-id index in one transaction) and hands the answer back to its caller. Every
rule lives here, so each (state × input) pair is tested without Redis
(tests/unit/test_transitions.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from gradesync.completion_time import CompletedAtSource, CompletionInstant
from gradesync.event import CompletionEvent, clean_text
from gradesync.merge import merge, standing
from gradesync.parsed import NEEDS_GRADE
from gradesync.policy import next_daily_attempt, retries_exhausted
from gradesync.record import (
    OPEN_STATES,
    RETRYABLE,
    Admission,
    Admitted,
    LedgerError,
    Record,
    State,
)
from gradesync.settings import Delivery

# A shadowed record about to be delivered for real: shadow runs count as attempts for nothing
# (the daily-retry window starts when delivery starts), and the mode is decided afresh by the
# process that sends it, i.e. the mode configured now.
DELIVERY_STARTS: dict[str, Any] = {"attempts": 0, "daily_retries": 0, "delivery": None}

# An operator's reason is a sentence, stored in the record (twice: last_error and history).
MAX_REASON_CHARS = 500

# The event-id index entry an admission writes: event id, its scope, "record-id body-digest".
EventIndex = tuple[str, str, str]
Requeued = Literal["requeued", "given_up", "skipped"]
# States that say the completion does not (or no longer) stand: a new one starts afresh.
UNDONE: frozenset[str] = frozenset({"not_passed", "withdrawn"})
Restalled = Literal["resend", "failed", "skipped"]


class Change(BaseModel):
    """What to write: the record as it becomes (``None``: untouched), history entries to append,
    and which side indexes to touch."""

    record: Record | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)
    event_index: EventIndex | None = None
    outbox: bool = False
    deferred_until: datetime | None = None


NOTHING = Change()


def hist(now: datetime, what: str, **details: Any) -> dict[str, Any]:
    return {"at": now.isoformat(), "what": what, **{k: v for k, v in details.items() if v}}


def moved(
    old: Record,
    now: datetime,
    state: State,
    error: LedgerError | None = None,
    next_attempt: datetime | None = None,
    **more: Any,
) -> Record:
    """The record in a new state; ``last_error`` is kept unless a new one is given."""
    update: dict[str, Any] = {"state": state, "updated": now, "next_attempt": next_attempt, **more}
    if error is not None:
        update["last_error"] = error
    return old.model_copy(update=update)


def closing(old: Record, now: datetime, state: State, error: LedgerError | None) -> Change:
    """A final state (delivered, failed, given_up, shadowed), with its history entry."""
    rec = moved(old, now, state, error)
    reason = rec.last_error.model_dump() if error is not None and rec.last_error else None
    return Change(record=rec, history=[hist(now, state, error=reason)])


def in_shadow_run(rec: Record) -> bool:
    """A run in shadow mode: it ends ``shadowed`` where a real one would end unresolved or
    failed, with the reason in ``last_error`` (what to fix before delivery starts)."""
    return rec.delivery == "shadow" and rec.state in OPEN_STATES


# -- admission ----------------------------------------------------------------------------------


def admit(
    old: Record | None,
    rid: str,
    event: CompletionEvent,
    now: datetime,
    needs: tuple[str, ...],
    index: EventIndex,
    instant_source: CompletedAtSource = "event",
) -> tuple[Change, Admission]:
    """An event for this completion key: a new record, a duplicate, merged into an open or
    unplaced record (in completion-time order, whatever the arrival order: gradesync/merge.py),
    a grade for one delivered without, or (after delivery) noted and ignored: first result
    wins."""
    if old is None:
        mine = standing(event)
        rec = Record(
            id=rid,
            event=event,
            state="queued",
            first_seen=now,
            updated=now,
            needs=list(needs),
            completed_at_source=instant_source,
            first_event=mine,
            grade_event=mine if event.grade is not None else None,
        )
        change = Change(record=rec, history=[hist(now, "received")], event_index=index, outbox=True)
        return change, Admission(outcome="created", record=rec, enqueue=True)
    if old.event.id == event.id:
        return NOTHING, Admission(outcome="duplicate", record=old, enqueue=False)
    if old.state == "delivered" and old.event.grade is None and event.grade is not None:
        return grade_added(old, event, now, index)
    if old.state == "delivered":
        note = {"code": "later_event_ignored", "kept": old.event.grade, "new": event.grade}
        rec = old.model_copy(update={"outcome": note, "updated": now})
        change = Change(
            record=rec,
            history=[hist(now, "later_event_ignored", event_id=event.id, **note)],
            event_index=index,
        )
        return change, Admission(outcome="after_delivery", record=rec, enqueue=False)
    if old.state in UNDONE:
        # A pass after a fail, or a completion again after its voiding: this event alone
        # stands, nothing of the earlier one is merged into it.
        mine = standing(event)
        reopen: dict[str, Any] = {
            "event": event,
            "updated": now,
            "needs": list(needs),
            "completed_at_source": instant_source,
            "first_event": mine,
            "grade_event": mine if event.grade is not None else None,
            "state": "queued",
            "next_attempt": None,
            "clock": None,
            "outcome": None,
        }
        rec = old.model_copy(update=reopen)
        entry = hist(now, "reopened", event_id=event.id, was=old.state)
        change = Change(record=rec, history=[entry], event_index=index, outbox=True)
        return change, Admission(outcome="restarted", record=rec, enqueue=True)
    update = merged(old, event, needs, instant_source) | {"updated": now}
    if old.state in OPEN_STATES:
        # The running chain reads the event from the ledger at each step.
        rec = old.model_copy(update=update)
        change = Change(
            record=rec, history=[hist(now, "merged", event_id=event.id)], event_index=index
        )
        return change, Admission(outcome="merged", record=rec, enqueue=False)
    restart = old.state == "given_up"
    update |= {"state": "queued", "next_attempt": None, "clock": None}
    if restart:
        update["daily_retries"] = 0
    if old.state == "shadowed":
        update |= DELIVERY_STARTS
    rec = old.model_copy(update=update)
    outcome: Admitted = "restarted" if restart else "merged"
    change = Change(
        record=rec, history=[hist(now, outcome, event_id=event.id)], event_index=index, outbox=True
    )
    return change, Admission(outcome=outcome, record=rec, enqueue=True)


def merged(
    old: Record,
    event: CompletionEvent,
    needs: tuple[str, ...],
    instant_source: CompletedAtSource = "event",
) -> dict[str, Any]:
    """The record's fields after merging a new event (gradesync/merge.py): the earliest
    completion's date and ids, the earliest grade; what the worker must still fetch follows the
    event whose date the record now holds, less a grade it now has."""
    first, graded = old.standings()
    result = merge(old.event, first, graded, event)
    update: dict[str, Any] = {
        "event": result.event,
        "first_event": result.first,
        "grade_event": result.graded,
    }
    if result.new_first:
        update |= {"needs": list(needs), "completed_at_source": instant_source}
    if result.event.grade is not None:
        update["needs"] = [n for n in update.get("needs", old.needs) if n != NEEDS_GRADE]
    return update


def grade_added(
    old: Record, event: CompletionEvent, now: datetime, index: EventIndex
) -> tuple[Change, Admission]:
    """A grade for a completion delivered without one: Coachview holds no result of ours, so
    run again for the result alone. The record keeps its first event (completion date, ids) and
    takes only the grade; every write step reads before it writes, so the ticks and the approval
    date stay as first delivered, and a result Coachview got meanwhile is kept (first wins)."""
    rec = old.model_copy(
        update={
            "event": old.event.model_copy(update={"grade": event.grade}),
            "grade_event": standing(event),
            "state": "queued",
            "updated": now,
            "needs": [],
            "next_attempt": None,
            "clock": None,
            "daily_retries": 0,
            "outcome": None,
        }
    )
    entry = hist(now, "grade_added", event_id=event.id, grade=event.grade)
    change = Change(record=rec, history=[entry], event_index=index, outbox=True)
    return change, Admission(outcome="grade_added", record=rec, enqueue=True)


def not_passed(
    old: Record | None,
    rid: str,
    event: CompletionEvent,
    now: datetime,
    index: EventIndex,
    instant_source: CompletedAtSource = "event",
) -> tuple[Change, Admission]:
    """The LMS says the learner did not pass: a record that writes nothing (``not_passed``);
    a pass recorded for the key before stays as it is (a later fail never undoes a pass)."""
    if old is not None and old.event.id == event.id:
        return NOTHING, Admission(outcome="duplicate", record=old, enqueue=False)
    entry = hist(now, "not_passed", event_id=event.id)
    if old is None or old.state in UNDONE:
        rec = (
            Record(id=rid, event=event, state="not_passed", first_seen=now, updated=now)
            if old is None
            else moved(old, now, "not_passed", event=event, needs=[])
        ).model_copy(update={"completed_at_source": instant_source})
        change = Change(record=rec, history=[entry], event_index=index)
        return change, Admission(outcome="not_passed", record=rec, enqueue=False)
    entry = hist(now, "not_passed_after_pass", event_id=event.id)
    change = Change(history=[entry], event_index=index)
    return change, Admission(outcome="pass_kept", record=old, enqueue=False)


# What a voiding did; the two ``voided_…`` ones are for an operator to look at in Coachview.
Withdrawal = Literal["withdrawn", "voided_after_delivery", "voided_during_delivery", "unknown"]


def withdraw(old: Record | None, now: datetime, statement: str) -> tuple[Change, Withdrawal]:
    """A voided completion: ``withdrawn`` (nothing written) while not delivered. Delivered, it
    stays delivered (Coachview's ticks are locked) with a note for an operator; voided while a
    run is writing, it is withdrawn with that note too (the run stops at its next step)."""
    if old is None:
        return NOTHING, "unknown"
    if old.state == "withdrawn":
        return NOTHING, "withdrawn"
    if old.state == "delivered":
        flag = {"code": "voided_after_delivery", "statement": statement}
        rec = old.model_copy(update={"outcome": flag, "updated": now})
        change = Change(record=rec, history=[hist(now, "voided_after_delivery", **flag)])
        return change, "voided_after_delivery"
    running = old.state == "in_progress"
    note: dict[str, Any] | None = (
        {"code": "voided_during_delivery", "statement": statement} if running else old.outcome
    )
    rec = moved(old, now, "withdrawn", outcome=note)
    change = Change(record=rec, history=[hist(now, "withdrawn", statement=statement)])
    return change, "voided_during_delivery" if running else "withdrawn"


# -- the pipeline's outcomes --------------------------------------------------------------------


def start(old: Record | None, now: datetime) -> tuple[Change, Record | None]:
    """A run starts (a new attempt), or a redelivered message resumes the running one; a closed
    record is returned as is, telling the caller not to run."""
    if old is None or old.state not in OPEN_STATES or old.state == "in_progress":
        return NOTHING, old
    rec = moved(
        old,
        now,
        "in_progress",
        next_attempt=old.next_attempt,
        attempts=old.attempts + 1,
        last_attempt=now,
    )
    return Change(record=rec, history=[hist(now, "started", attempt=rec.attempts)]), rec


def enriched(
    old: Record | None,
    now: datetime,
    grade: str | None,
    match_person_id: str | None,
    match_course_id: str | None,
    note: str | None,
    instant: CompletionInstant | None,
) -> tuple[Change, Record | None]:
    """What the LMS told us: its grade fills a grade the event did not carry, and its own
    completion instant replaces the event's (the event's stays in history)."""
    if old is None:
        return NOTHING, None
    event = old.event
    update: dict[str, Any] = {}
    if event.grade is None and grade is not None:
        update["grade"] = grade
    instant_moved: dict[str, str] | None = None
    if instant is not None:
        update["completed_at"] = instant.at
        instant_moved = {
            "source": instant.source,
            "at": instant.at.isoformat(),
            "event": event.completed_at.isoformat(),
        }
    rec = old.model_copy(
        update={
            "event": event.model_copy(update=update),
            "needs": [],
            "match_person_id": match_person_id,
            "match_course_id": match_course_id,
            "completed_at_source": instant.source if instant else old.completed_at_source,
            "updated": now,
        }
    )
    entry = hist(now, "lms", note=note, completed_at=instant_moved)
    return Change(record=rec, history=[entry]), rec


def noted(
    old: Record | None,
    step: str,
    now: datetime,
    note: dict[str, Any],
    writes: list[dict[str, Any]] | None = None,
) -> tuple[Change, Record | None]:
    """A step done with an outcome to keep on the record (e.g. ``result_kept_existing``)."""
    if old is None:
        return NOTHING, None
    rec = old.model_copy(update={"outcome": note, "updated": now})
    return Change(record=rec, history=[hist(now, step, note=note, writes=writes)]), rec


def close(
    old: Record | None, now: datetime, state: State, error: LedgerError | None
) -> tuple[Change, State | None]:
    """``delivered``, ``failed`` or ``given_up``; a shadow run's failure ends ``shadowed``.

    Only a run fails or is given up: a late failure from a stray step (a duplicate chain, a
    redelivered message) leaves a closed record as it is. Delivery is recorded whenever it
    happens: Coachview then holds the result, whatever the record said before."""
    if old is None or old.state == state:
        return NOTHING, None if old is None else old.state
    if state != "delivered" and old.state not in OPEN_STATES:
        return NOTHING, old.state
    if state == "failed" and in_shadow_run(old):
        return closing(old, now, "shadowed", error), "shadowed"
    change = closing(old, now, state, error)
    if state == "delivered" and change.record is not None:
        # Nothing is left to fix: an earlier attempt's error stays in history only.
        change.record = change.record.model_copy(update={"last_error": None})
    return change, state


def shadowed(old: Record | None, now: datetime, approval_date: str) -> tuple[Change, None]:
    """A shadow run got through: every write it would make is in history, nothing written."""
    if old is None or old.state not in OPEN_STATES:
        return NOTHING, None
    rec = moved(old, now, "shadowed", last_error=None)  # nothing left to fix
    return Change(record=rec, history=[hist(now, "shadowed", approval_date=approval_date)]), None


def unresolved(
    old: Record | None,
    now: datetime,
    error: LedgerError,
    max_retries: int,
    retry_time: time,
    tz: ZoneInfo,
) -> tuple[Change, State | None]:
    """Coachview cannot place it yet: parked for the daily pass, or given up when its daily
    retries are spent. A shadow run ends ``shadowed``: the window starts with delivery."""
    if old is None or old.state not in OPEN_STATES:
        return NOTHING, None if old is None else old.state
    if in_shadow_run(old):
        return closing(old, now, "shadowed", error), "shadowed"
    if retries_exhausted(old.daily_retries, max_retries):
        return closing(old, now, "given_up", error), "given_up"
    reference = max(now, old.clock) if old.clock else now
    due = next_daily_attempt(reference, retry_time, tz).astimezone(UTC)
    rec = moved(old, now, "unresolved", error, due)
    entry = hist(now, "unresolved", error=error.model_dump(), next_attempt=due.isoformat())
    return Change(record=rec, history=[entry]), "unresolved"


def defer(
    old: Record | None, now: datetime, until: datetime, error: LedgerError
) -> tuple[Change, None]:
    """Back to ``queued`` until ``until`` (a budget reset, a long Retry-After): waiting, not
    failing; the sweep resumes it then."""
    if old is None or old.state not in OPEN_STATES:
        return NOTHING, None
    rec = moved(old, now, "queued", error, until)
    entry = hist(now, "deferred", error=error.model_dump(), until=until.isoformat())
    return Change(record=rec, history=[entry], deferred_until=until), None


def delivery(old: Record | None, configured: Delivery) -> tuple[Change, Delivery]:
    """The record's delivery mode; one not decided yet is decided now: ``configured``."""
    if old is None:
        return NOTHING, configured
    if old.delivery is not None:
        return NOTHING, old.delivery
    return Change(record=old.model_copy(update={"delivery": configured})), configured


def restall(old: Record | None, now: datetime, max_stalls: int) -> tuple[Change, Restalled]:
    """A stalled run: queued again as a new attempt, or failed once it has stalled too often.
    A ``queued`` record whose message was lost is sent again the same way: its resends count
    alike, so a record whose message keeps vanishing ends ``stalled`` too."""
    if old is None or old.state not in ("in_progress", "queued"):
        return NOTHING, "skipped"
    if old.stalls >= max_stalls:
        error = LedgerError(
            code="stalled",
            message=f"run stalled {old.stalls + 1} times (no progress); not sent again",
        )
        return closing(old, now, "failed", error), "failed"
    rec = moved(old, now, "queued", stalls=old.stalls + 1)
    return Change(record=rec, history=[hist(now, "stalled", stalls=rec.stalls)], outbox=True), (
        "resend"
    )


def requeue_due(
    old: Record | None, as_of: datetime, now: datetime, max_retries: int
) -> tuple[Change, Requeued]:
    """The daily pass takes a due record: queued for its next daily retry, or given up. Only
    one pass per due time can take it: the record is no longer due once taken."""
    if old is None or old.state != "unresolved" or old.next_attempt is None:
        return NOTHING, "skipped"
    if old.next_attempt > as_of:
        return NOTHING, "skipped"
    if retries_exhausted(old.daily_retries, max_retries):
        return closing(old, now, "given_up", old.last_error), "given_up"
    rec = moved(old, now, "queued", daily_retries=old.daily_retries + 1, clock=as_of)
    entry = hist(now, "daily_retry", retry=rec.daily_retries, as_of=as_of.isoformat())
    return Change(record=rec, history=[entry], outbox=True), "requeued"


# -- operators ----------------------------------------------------------------------------------


def retry_now(old: Record | None, rid: str, now: datetime, by: str) -> tuple[Change, Record]:
    """An operator queues an unresolved, failed, given-up or shadowed record again at once
    (after a data fix); a shadowed one starts real delivery: counters from zero."""
    if old is None:
        raise LookupError(f"no record {rid}")
    if old.state not in RETRYABLE:
        raise ValueError(f"record is {old.state}; only {', '.join(RETRYABLE)}")
    starts = DELIVERY_STARTS if old.state == "shadowed" else {}
    rec = moved(old, now, "queued", clock=None, stalls=0, **starts)
    entry = hist(now, "operator_retry", by=by, was=old.state if starts else None)
    return Change(record=rec, history=[entry], outbox=True), rec


def give_up_now(
    old: Record | None, rid: str, now: datetime, reason: str, by: str
) -> tuple[Change, Record]:
    """An operator stops a record, with a reason (and who, from the console)."""
    if old is None:
        raise LookupError(f"no record {rid}")
    if old.state in ("delivered", "given_up"):
        raise ValueError(f"record is already {old.state}")
    try:
        reason = clean_text(reason, MAX_REASON_CHARS)
    except ValueError as exc:
        raise ValueError(f"the reason {exc}") from None
    error = LedgerError(code="operator_gave_up", message=reason)
    rec = moved(old, now, "given_up", error)
    entry = hist(now, "given_up", error=error.model_dump(), by=by)
    return Change(record=rec, history=[entry]), rec
