"""The ledger: one Redis record per completion key, its history, and the indexes operators use.

Layout (prefix ``gs:``):
- ``rec:{id}``    the record as JSON (``id`` is the completion key's opaque hash)
- ``hist:{id}``   a capped list of history entries (JSON), oldest first
- ``eid:{event_id}``  hash of ``{source|instance}`` → ``"{id} {body-hash}"``: event idempotency,
  scoped per source and installation (one source cannot claim another's event ids)
- ``state:{state}``   sorted set of ids by last update, one per state: counts and newest-first lists
- ``all``         sorted set of every id by last update
- ``due``         sorted set of ``unresolved`` ids by next attempt (epoch): the daily pass reads
  only what is due, however many records wait
- ``outbox``      sorted set of ids recorded for sending but not yet handed to the broker: a
  crash between the two leaves the id here, and the sweep sends it again
Every change to a record and its indexes is one MULTI/EXEC under WATCH, so concurrent workers,
ingress processes and beat instances never half-apply a transition or apply one twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, time
from functools import partial
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

import redis
from pydantic import BaseModel, Field, ValidationError, field_serializer

from gradesync import keys
from gradesync.completion_time import CompletedAtSource, CompletionInstant
from gradesync.event import CompletionEvent, CompletionKey
from gradesync.keys import text as _text
from gradesync.policy import next_daily_attempt, retries_exhausted
from gradesync.settings import Delivery

State = Literal[
    "queued", "in_progress", "delivered", "unresolved", "given_up", "failed", "shadowed"
]
STATES: tuple[State, ...] = (
    "queued",
    "in_progress",
    "delivered",
    "unresolved",
    "given_up",
    "failed",
    "shadowed",
)
OPEN_STATES: frozenset[str] = frozenset({"queued", "in_progress"})
# What an operator can queue again (``gradesync retry``).
RETRYABLE: tuple[State, ...] = ("unresolved", "failed", "given_up", "shadowed")
# History entries named after pipeline steps (see workers/tasks.py).
STEP_NAMES: frozenset[str] = frozenset(
    {
        "lms",
        "person",
        "course",
        "enrolment_component",
        "result_link",
        "result",
        "attendance",
        "passed",
        "completed",
        "approved",
    }
)

HISTORY_CAP = 200
# A shadowed record about to be delivered for real: shadow runs count as attempts for nothing
# (the daily-retry window starts when delivery starts), and the mode is decided afresh by the
# process that sends it, i.e. the mode configured now.
_DELIVERY_STARTS: dict[str, Any] = {"attempts": 0, "daily_retries": 0, "delivery": None}

T = TypeVar("T")


class AmbiguousEventId(LookupError):
    def __init__(self, event_id: str, rids: list[str]) -> None:
        super().__init__(
            f"event id {event_id!r} names {len(rids)} records of different sources: "
            + ", ".join(rids)
            + "; give the record id instead"
        )


class LedgerError(BaseModel):
    code: str
    message: str


class Record(BaseModel):
    id: str = ""
    event: CompletionEvent
    state: State
    attempts: int = 0
    daily_retries: int = 0
    first_seen: datetime
    updated: datetime
    last_attempt: datetime | None = None
    next_attempt: datetime | None = None
    last_error: LedgerError | None = None
    outcome: dict[str, Any] | None = None
    # What the worker must still fetch from the LMS (e.g. "grade"), and the ids Coachview
    # matches on when they differ from the LMS's own (e.g. Moodle idnumber for its user id).
    needs: list[str] = Field(default_factory=list)
    match_person_id: str | None = None
    match_course_id: str | None = None
    # Where ``event.completed_at`` (the approval date's instant) came from: the event itself,
    # or the LMS's own record of the completion (Moodle's criteria times), set by enrichment.
    completed_at_source: CompletedAtSource = "event"
    # The as-of time of the pass that re-enqueued it: the next attempt is scheduled from there,
    # so a pass run by hand for a past or future day keeps the daily rhythm.
    clock: datetime | None = None
    # Runs of this record the sweep found stalled (no progress for GRADESYNC_STALL_AFTER_S) and
    # sent again; at GRADESYNC_MAX_STALLS the next stall fails it instead (code ``stalled``).
    stalls: int = 0
    # How this record is delivered (COACHVIEW_DELIVERY), fixed when it is first handed to the
    # broker — right after admission, by the admitting process — so every later run (sweep,
    # daily pass) uses the same chain whatever the process sending it is configured for.
    # ``None``: not sent yet (or stored by an earlier version: the sender's mode then).
    delivery: Delivery | None = None

    @property
    def key(self) -> CompletionKey:
        return self.event.key

    @property
    def coachview_person_id(self) -> str:
        """The id Coachview knows the learner by (the LMS id unless mapped)."""
        return self.match_person_id or self.event.person_id

    @property
    def coachview_course_id(self) -> str:
        return self.match_course_id or self.event.course_id

    @field_serializer("first_seen", "updated", "last_attempt", "next_attempt", "clock")
    def _millis(self, value: datetime | None) -> str | None:
        return None if value is None else value.isoformat(timespec="milliseconds")

    def public(self, steps: list[str] | None = None) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["key"] = self.key.text()
        if steps is not None:
            data["steps"] = steps
        return data


Admitted = Literal[
    "created", "duplicate", "replaced", "after_delivery", "restarted", "grade_added", "conflict"
]


class Admission(BaseModel):
    outcome: Admitted
    record: Record
    enqueue: bool


class _Change(BaseModel):
    record: Record | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)
    event_index: tuple[str, str, str] | None = None  # event id, scope, "record digest"
    outbox: bool = False
    deferred_until: datetime | None = None


def _moved(
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


def _closing(old: Record, now: datetime, state: State, error: LedgerError | None) -> _Change:
    """A final state (delivered, failed, given_up), with its history entry."""
    rec = _moved(old, now, state, error)
    reason = rec.last_error.model_dump() if error is not None and rec.last_error else None
    return _Change(record=rec, history=[_hist(now, state, error=reason)])


def _grade_added(
    old: Record, event: CompletionEvent, now: datetime, index: tuple[str, str, str]
) -> tuple[_Change, Admission]:
    """A grade for a completion delivered without one: Coachview holds no result of ours, so
    run again for the result alone. The record keeps its first event (completion date, ids) and
    takes only the grade; every write step reads before it writes, so the ticks and the approval
    date stay as first delivered, and a result Coachview got meanwhile is kept (first wins)."""
    rec = old.model_copy(
        update={
            "event": old.event.model_copy(update={"grade": event.grade}),
            "state": "queued",
            "updated": now,
            "needs": [],
            "next_attempt": None,
            "clock": None,
            "daily_retries": 0,
            "outcome": None,
        }
    )
    entry = _hist(now, "grade_added", event_id=event.id, grade=event.grade)
    change = _Change(record=rec, history=[entry], event_index=index, outbox=True)
    return change, Admission(outcome="grade_added", record=rec, enqueue=True)


class Stalled(BaseModel):
    resend: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)


def _restall(
    old: Record | None, *, now: datetime, max_stalls: int
) -> tuple[_Change, Literal["resend", "failed", "skipped"]]:
    """A stalled run: queued again as a new attempt, or failed once it has stalled too often."""
    if old is None or old.state != "in_progress":
        return _Change(), "skipped"
    if old.stalls >= max_stalls:
        error = LedgerError(
            code="stalled",
            message=f"run stalled {old.stalls + 1} times (no progress); not sent again",
        )
        return _closing(old, now, "failed", error), "failed"
    rec = _moved(old, now, "queued", stalls=old.stalls + 1)
    entry = _hist(now, "stalled", stalls=rec.stalls)
    return _Change(record=rec, history=[entry], outbox=True), "resend"


def _in_shadow_run(rec: Record) -> bool:
    """A run in shadow mode: it ends ``shadowed`` where a real one would end unresolved or
    failed, with the reason in ``last_error`` (what to fix before delivery starts)."""
    return rec.delivery == "shadow" and rec.state in OPEN_STATES


def _hist(now: datetime, what: str, **details: Any) -> dict[str, Any]:
    return {"at": now.isoformat(), "what": what, **{k: v for k, v in details.items() if v}}


def _pack(entry: dict[str, Any]) -> str:
    """A history entry as ``"<epoch ms, base 36> <what>[ <details JSON>]"``: a quarter of the
    JSON size, which matters at one entry per step for every completion."""
    at = round(datetime.fromisoformat(entry["at"]).timestamp() * 1000)
    details = {k: v for k, v in entry.items() if k not in ("at", "what")}
    text = f"{_base36(at)} {entry['what']}"
    return f"{text} {json.dumps(details, separators=(',', ':'))}" if details else text


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def _unpack(raw: Any) -> dict[str, Any]:
    at, what, *rest = _text(raw).split(" ", 2)
    when = datetime.fromtimestamp(int(at, 36) / 1000, UTC).isoformat(timespec="milliseconds")
    return {"at": when, "what": what, **(json.loads(rest[0]) if rest else {})}


def _dump(record: Record) -> str:
    # The id is the key's suffix and defaults are implied: neither is stored (bytes per record).
    return record.model_dump_json(exclude_defaults=True, exclude_none=True, exclude={"id"})


class UnreadableRecord(ValueError):
    """A stored record the current model rejects (written by an older version, or damaged).

    The message names the fields and what is wrong, never their values: a grade or person id
    must not reach a log line or a traceback."""

    def __init__(self, rid: str, problems: list[str]) -> None:
        super().__init__(f"record {rid} cannot be read: {'; '.join(problems)}")
        self.rid = rid
        self.problems = problems


class Unreadable(BaseModel):
    """A listing's placeholder for a record that cannot be loaded: shown by its id, removable."""

    id: str
    problems: list[str]


def _load(raw: Any, rid: str) -> Record | None:
    if not raw:
        return None
    try:
        return Record.model_validate_json(raw).model_copy(update={"id": rid})
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(record)'}: {e['type']}"
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise UnreadableRecord(rid, problems) from None


def _event_scope(event: CompletionEvent, channel: str) -> str:
    """The event-id namespace: the channel the event came in by (the ingress route whose secret
    authenticated it, or the CLI) and the LMS installation it names. A caller on one channel
    cannot claim an event id another channel will send (a canonical caller naming Moodle's
    predictable ids), nor can one installation claim another's."""
    return f"{channel}|" + event.key.text().rsplit("|", 2)[0]


def body_hash(event: CompletionEvent) -> str:
    return hashlib.sha256(event.model_dump_json().encode()).hexdigest()[:16]


class Ledger:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    # -- keys ----------------------------------------------------------------------------------

    @staticmethod
    def _rec(rid: str) -> str:
        return f"{keys.RECORD}{rid}"

    @staticmethod
    def _hist_key(rid: str) -> str:
        return f"{keys.HISTORY}{rid}"

    @staticmethod
    def _eid(event_id: str) -> str:
        return f"{keys.EVENT_ID}{event_id}"

    @staticmethod
    def _state(state: str) -> str:
        return f"{keys.STATE}{state}"

    ALL = keys.ALL
    DUE = keys.DUE
    OUTBOX = keys.OUTBOX
    DEFERRED = keys.DEFERRED

    # -- the one write path ----------------------------------------------------------------------

    def _change(self, rid: str, decide: Callable[[Record | None], tuple[_Change, T]]) -> T:
        key = self._rec(rid)
        with self.r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    raw = pipe.get(key)
                    old = _load(raw, rid)
                    change, answer = decide(old)
                    pipe.multi()
                    self._apply(pipe, old, change)
                    pipe.execute()
                    return answer
                except redis.WatchError:
                    continue

    def _apply(self, pipe: Any, old: Record | None, change: _Change) -> None:
        new = change.record
        if new is not None:
            score = new.updated.timestamp()
            pipe.set(self._rec(new.id), _dump(new))
            # Indexes follow state changes only: a step inside a run touches just the record.
            moved = old is None or old.state != new.state
            if moved:
                if old is not None:
                    pipe.zrem(self._state(old.state), new.id)
                pipe.zadd(self._state(new.state), {new.id: score})
                pipe.zadd(self.ALL, {new.id: score})
            elif new.state == "in_progress":  # progress within a run (see take_stalled)
                pipe.zadd(self._state(new.state), {new.id: score})
            if new.state == "unresolved" and new.next_attempt is not None:
                pipe.zadd(self.DUE, {new.id: new.next_attempt.timestamp()})
            elif old is not None and old.state == "unresolved":
                pipe.zrem(self.DUE, new.id)

            if change.outbox:
                pipe.zadd(self.OUTBOX, {new.id: score})
            if change.deferred_until is not None:
                pipe.zadd(self.DEFERRED, {new.id: change.deferred_until.timestamp()})
        rid = new.id if new is not None else (old.id if old is not None else None)
        if rid is not None and change.history:
            hk = self._hist_key(rid)
            pipe.rpush(hk, *(_pack(h) for h in change.history))
            pipe.ltrim(hk, -HISTORY_CAP, -1)
        if change.event_index is not None:
            event_id, scope, value = change.event_index
            pipe.hset(self._eid(event_id), scope, value)

    # -- admission -------------------------------------------------------------------------------

    def admit(
        self,
        event: CompletionEvent,
        now: datetime,
        needs: tuple[str, ...] = (),
        channel: str = "canonical",
    ) -> Admission:
        """Record an event for its completion key; say whether a pipeline run must be enqueued.
        ``channel``: where it came in (``canonical``, ``moodle``, …), the event id's namespace."""
        rid = event.key.id
        digest = body_hash(event)
        scope = _event_scope(event, channel)
        seen = self.r.hget(self._eid(event.id), scope)
        if seen is not None:
            seen_rid, _, seen_digest = _text(seen).partition(" ")
            existing = self.get(seen_rid)
            if existing is not None:
                outcome: Admitted = "duplicate" if seen_digest == digest else "conflict"
                return Admission(outcome=outcome, record=existing, enqueue=False)

        def decide(old: Record | None) -> tuple[_Change, Admission]:
            index = (event.id, scope, f"{rid} {digest}")
            if old is None:
                rec = Record(
                    id=rid,
                    event=event,
                    state="queued",
                    first_seen=now,
                    updated=now,
                    needs=list(needs),
                )
                change = _Change(
                    record=rec,
                    history=[_hist(now, "received")],
                    event_index=index,
                    outbox=True,
                )
                return change, Admission(outcome="created", record=rec, enqueue=True)
            if old.event.id == event.id:
                return _Change(), Admission(outcome="duplicate", record=old, enqueue=False)
            if old.state == "delivered" and old.event.grade is None and event.grade is not None:
                return _grade_added(old, event, now, index)
            if old.state == "delivered":
                note = {"code": "later_event_ignored", "kept": old.event.grade, "new": event.grade}
                rec = old.model_copy(update={"outcome": note, "updated": now})
                change = _Change(
                    record=rec,
                    history=[_hist(now, "later_event_ignored", event_id=event.id, **note)],
                    event_index=index,
                )
                return change, Admission(outcome="after_delivery", record=rec, enqueue=False)
            update: dict[str, Any] = {
                "event": event,
                "updated": now,
                "needs": list(needs),
                "completed_at_source": "event",
            }

            if old.state in OPEN_STATES:
                # The running chain reads the event from the ledger at each step.
                rec = old.model_copy(update=update)
                return _Change(
                    record=rec,
                    history=[_hist(now, "replaced", event_id=event.id)],
                    event_index=index,
                ), Admission(outcome="replaced", record=rec, enqueue=False)
            restart = old.state == "given_up"
            update |= {"state": "queued", "next_attempt": None, "clock": None}
            if restart:
                update["daily_retries"] = 0
            if old.state == "shadowed":
                update |= _DELIVERY_STARTS
            rec = old.model_copy(update=update)
            what = "restarted" if restart else "replaced"
            return _Change(
                record=rec,
                history=[_hist(now, what, event_id=event.id)],
                event_index=index,
                outbox=True,
            ), Admission(outcome="restarted" if restart else "replaced", record=rec, enqueue=True)

        return self._change(rid, decide)

    # -- the pipeline's transitions --------------------------------------------------------------

    def start(self, rid: str, now: datetime) -> Record | None:
        """Mark a run as started; ``None`` (or a closed record) tells the caller not to run."""

        def decide(old: Record | None) -> tuple[_Change, Record | None]:
            if old is None or old.state not in OPEN_STATES:
                return _Change(), old
            if old.state == "in_progress":  # a redelivered message resumes the same attempt
                return _Change(), old
            rec = old.model_copy(
                update={
                    "state": "in_progress",
                    "attempts": old.attempts + 1,
                    "last_attempt": now,
                    "updated": now,
                }
            )
            return _Change(record=rec, history=[_hist(now, "started", attempt=rec.attempts)]), rec

        return self._change(rid, decide)

    def enriched(
        self,
        rid: str,
        now: datetime,
        grade: str | None,
        match_person_id: str | None,
        match_course_id: str | None,
        note: str | None,
        instant: CompletionInstant | None = None,
    ) -> Record | None:
        """Store what the LMS told us; the LMS grade fills a grade the event did not carry, and
        the LMS's completion instant replaces the event's (the event's stays in history)."""

        def decide(old: Record | None) -> tuple[_Change, Record | None]:
            if old is None:
                return _Change(), None
            event = old.event
            update: dict[str, Any] = {}
            if event.grade is None and grade is not None:
                update["grade"] = grade
            moved: dict[str, str] | None = None
            if instant is not None:
                update["completed_at"] = instant.at
                moved = {
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
            entry = _hist(now, "lms", note=note, completed_at=moved)
            return _Change(record=rec, history=[entry]), rec

        return self._change(rid, decide)

    def step_done(
        self, rid: str, step: str, now: datetime, note: dict[str, Any] | None = None
    ) -> Record | None:
        """A step is done: a history entry; returns the record as it now stands. Only an
        outcome note touches the record itself, so a plain step costs one round trip (the
        history append and the read together), not a transaction."""
        if note is None:
            return self._progress(rid, now, _hist(now, step))

        def decide(old: Record | None) -> tuple[_Change, Record | None]:
            if old is None:
                return _Change(), None
            rec = old.model_copy(update={"outcome": note, "updated": now})
            return _Change(record=rec, history=[_hist(now, step, note=note)]), rec

        return self._change(rid, decide)

    def shadow_step(
        self, rid: str, step: str, now: datetime, planned: dict[str, Any]
    ) -> Record | None:
        """A write step run in shadow mode: its history entry says what it would have done
        (``would_write`` with each field's old and new value, or ``would_skip`` and why)
        instead of doing it; returns the record as it now stands, as :meth:`step_done` does."""
        what = "would_write" if "writes" in planned else "would_skip"
        return self._progress(rid, now, _hist(now, what, step=step, **planned))

    def _progress(self, rid: str, now: datetime, entry: dict[str, Any]) -> Record | None:
        hk = self._hist_key(rid)
        with self.r.pipeline(transaction=False) as pipe:
            pipe.rpush(hk, _pack(entry))
            pipe.ltrim(hk, -HISTORY_CAP, -1)
            # The run made progress: the stall sweep measures from here (see take_stalled).
            pipe.zadd(self._state("in_progress"), {rid: now.timestamp()}, xx=True)
            pipe.get(self._rec(rid))
            *_, raw = pipe.execute()
        return _load(raw, rid)

    def steps(self, rid: str) -> list[str]:
        """The pipeline steps done for this record, in the order first done (from history)."""
        done: list[str] = []
        for entry in self.history(rid):
            if entry["what"] in STEP_NAMES and entry["what"] not in done:
                done.append(entry["what"])
        return done

    def deliver(self, rid: str, now: datetime) -> None:
        self._close(rid, now, "delivered", None)

    def fail(self, rid: str, now: datetime, error: LedgerError) -> State | None:
        """``failed``; a shadow run ends ``shadowed`` instead, the error saying what a real
        delivery would have met. Returns the record's state (``None``: no such record)."""
        return self._close(rid, now, "failed", error)

    def shadowed(self, rid: str, now: datetime, approval_date: str) -> None:
        """A shadow run got through: every write it would make is in history (``would_write``),
        dated ``approval_date``; nothing was written."""

        def decide(old: Record | None) -> tuple[_Change, None]:
            if old is None or old.state not in OPEN_STATES:
                return _Change(), None
            rec = _moved(old, now, "shadowed", last_error=None)  # nothing left to fix
            return _Change(
                record=rec, history=[_hist(now, "shadowed", approval_date=approval_date)]
            ), None

        self._change(rid, decide)

    def give_up(self, rid: str, now: datetime, error: LedgerError) -> None:
        self._close(rid, now, "given_up", error)

    def _close(
        self, rid: str, now: datetime, state: State, error: LedgerError | None
    ) -> State | None:
        def decide(old: Record | None) -> tuple[_Change, State | None]:
            if old is None or old.state == state:
                return _Change(), None if old is None else old.state
            if state == "failed" and _in_shadow_run(old):
                return _closing(old, now, "shadowed", error), "shadowed"
            return _closing(old, now, state, error), state

        return self._change(rid, decide)

    def unresolved(
        self,
        rid: str,
        now: datetime,
        error: LedgerError,
        *,
        max_retries: int,
        retry_time: time,
        tz: ZoneInfo,
    ) -> State | None:
        """Park a record for the daily pass, or give it up when its daily retries are spent."""

        def decide(old: Record | None) -> tuple[_Change, State | None]:
            if old is None or old.state not in OPEN_STATES:
                return _Change(), None if old is None else old.state
            if _in_shadow_run(old):  # no daily retry: the window starts with delivery
                return _closing(old, now, "shadowed", error), "shadowed"
            if retries_exhausted(old.daily_retries, max_retries):
                return _closing(old, now, "given_up", error), "given_up"
            reference = max(now, old.clock) if old.clock else now
            due = next_daily_attempt(reference, retry_time, tz).astimezone(UTC)
            rec = _moved(old, now, "unresolved", error, due)
            entry = _hist(now, "unresolved", error=error.model_dump(), next_attempt=due.isoformat())
            return _Change(record=rec, history=[entry]), "unresolved"

        return self._change(rid, decide)

    def defer(self, rid: str, now: datetime, until: datetime, error: LedgerError) -> None:
        """Back to ``queued`` until ``until`` (Coachview's budget reset): waiting, not failing."""

        def decide(old: Record | None) -> tuple[_Change, None]:
            if old is None or old.state not in OPEN_STATES:
                return _Change(), None
            rec = _moved(old, now, "queued", error, until)
            entry = _hist(now, "deferred", error=error.model_dump(), until=until.isoformat())
            return _Change(record=rec, history=[entry], deferred_until=until), None

        self._change(rid, decide)

    def delivery(self, rid: str, configured: Delivery) -> Delivery:
        """The record's delivery mode; one not decided yet is decided now: ``configured``."""

        def decide(old: Record | None) -> tuple[_Change, Delivery]:
            if old is None:
                return _Change(), configured
            if old.delivery is not None:
                return _Change(), old.delivery
            return _Change(record=old.model_copy(update={"delivery": configured})), configured

        return self._change(rid, decide)

    def busy_until(self, rid: str, until: datetime) -> None:
        """A run that waits on purpose (a retry countdown) is not stalled before ``until``."""
        self.r.zadd(self._state("in_progress"), {rid: until.timestamp()}, xx=True)

    def take_stalled(
        self, progress_before: datetime, now: datetime, max_stalls: int, limit: int = 1000
    ) -> Stalled:
        """Runs ``in_progress`` with no progress since ``progress_before``: their chain was lost
        (e.g. the next step's message died with Redis). Progress is the last step done, or the
        end of a retry countdown (:meth:`busy_until`). Each id goes to one caller.

        A stalled run goes back to ``queued`` (and the outbox, so a crash before sending leaves
        it for the next sweep): its rerun is a new attempt. After ``max_stalls`` re-sends the
        next stall fails the record (``stalled``) instead of sending it round again.
        """
        raw = self.r.eval(
            _TAKE_STALLED,
            1,
            self._state("in_progress"),
            progress_before.timestamp(),
            now.timestamp(),
            limit,
        )
        taken = Stalled()
        for rid in (_text(r) for r in raw):
            outcome = self._change(rid, partial(_restall, now=now, max_stalls=max_stalls))
            if outcome == "resend":
                taken.resend.append(rid)
            elif outcome == "failed":
                taken.failed.append(rid)
        return taken

    def take_deferred(self, now: datetime, limit: int = 1000) -> list[str]:
        """Deferred records whose time has come, moved to the outbox in one step so a crash
        before sending leaves them for the sweep; each id goes to exactly one caller."""
        raw = self.r.eval(_TAKE_DEFERRED, 2, self.DEFERRED, self.OUTBOX, now.timestamp(), limit)
        return [_text(r) for r in raw]

    # -- operators ---------------------------------------------------------------------------

    def retry_now(self, rid: str, now: datetime, *, by: str = "") -> Record:
        """Queue an unresolved, failed, given-up or shadowed record again at once (after a data
        fix); ``by``: who asked (the console's user), kept in the history entry. A shadowed one
        starts real delivery: counters from zero, the mode of the sender."""

        def decide(old: Record | None) -> tuple[_Change, Record]:
            if old is None:
                raise LookupError(f"no record {rid}")
            if old.state not in RETRYABLE:
                raise ValueError(f"record is {old.state}; only {', '.join(RETRYABLE)}")
            starts = _DELIVERY_STARTS if old.state == "shadowed" else {}
            rec = _moved(old, now, "queued", clock=None, stalls=0, **starts)
            entry = _hist(now, "operator_retry", by=by, was=old.state if starts else None)
            return _Change(record=rec, history=[entry], outbox=True), rec

        return self._change(rid, decide)

    def give_up_now(self, rid: str, now: datetime, reason: str, *, by: str = "") -> Record:
        def decide(old: Record | None) -> tuple[_Change, Record]:
            if old is None:
                raise LookupError(f"no record {rid}")
            if old.state in ("delivered", "given_up"):
                raise ValueError(f"record is already {old.state}")
            change = _closing(
                old, now, "given_up", LedgerError(code="operator_gave_up", message=reason)
            )
            assert change.record is not None
            if by:
                change.history[0]["by"] = by
            return change, change.record

        return self._change(rid, decide)

    def purgeable(self, updated_before: datetime, states: tuple[str, ...]) -> list[str]:
        ids: list[str] = []
        for state in states:
            raw = self.r.zrangebyscore(self._state(state), "-inf", updated_before.timestamp())
            ids += [_text(r) for r in raw]
        return ids

    def purge(self, rid: str, states: tuple[str, ...]) -> bool:
        """Delete a closed record, its history and index entries (retention, GDPR/AVG)."""
        key = self._rec(rid)
        with self.r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    raw = pipe.get(key)
                    try:
                        rec = _load(raw, rid)
                    except UnreadableRecord:
                        rec = None  # `gradesync purge --unreadable` is for those
                    if rec is None or rec.state not in states:
                        pipe.reset()
                        return False
                    eid = self._eid(rec.event.id)
                    # Its event id's entries, whichever channel they came by.
                    mine = [
                        field
                        for field, value in pipe.hgetall(eid).items()
                        if _text(value).startswith(f"{rid} ")
                    ]
                    pipe.multi()
                    pipe.delete(key, self._hist_key(rid))
                    if mine:
                        pipe.hdel(eid, *mine)
                    pipe.zrem(self._state(rec.state), rid)
                    for index in (self.ALL, self.DUE, self.OUTBOX, self.DEFERRED):
                        pipe.zrem(index, rid)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue

    # -- the daily pass --------------------------------------------------------------------------

    def due_ids(self, as_of: datetime, limit: int = 1000) -> list[str]:
        raw = self.r.zrangebyscore(self.DUE, "-inf", as_of.timestamp(), start=0, num=limit)
        return [_text(r) for r in raw]

    def requeue_due(
        self, rid: str, as_of: datetime, now: datetime, max_retries: int
    ) -> Literal["requeued", "given_up", "skipped"]:
        """Take one due record for a daily retry; only one caller per due time can win."""

        def decide(
            old: Record | None,
        ) -> tuple[_Change, Literal["requeued", "given_up", "skipped"]]:
            if (
                old is None
                or old.state != "unresolved"
                or old.next_attempt is None
                or old.next_attempt > as_of
            ):
                return _Change(), "skipped"
            if retries_exhausted(old.daily_retries, max_retries):
                return _closing(old, now, "given_up", old.last_error), "given_up"
            rec = _moved(old, now, "queued", daily_retries=old.daily_retries + 1, clock=as_of)
            entry = _hist(now, "daily_retry", retry=rec.daily_retries, as_of=as_of.isoformat())
            return _Change(record=rec, history=[entry], outbox=True), "requeued"

        return self._change(rid, decide)

    # -- the outbox ------------------------------------------------------------------------------

    def sent(self, rid: str) -> None:
        """The broker has the message: the record no longer needs the sweep."""
        self.r.zrem(self.OUTBOX, rid)

    def unsent(self, recorded_before: datetime, limit: int = 1000) -> list[str]:
        raw = self.r.zrangebyscore(
            self.OUTBOX, "-inf", recorded_before.timestamp(), start=0, num=limit
        )
        return [_text(r) for r in raw]

    # -- reading ---------------------------------------------------------------------------------

    def get(self, rid: str) -> Record | None:
        raw = self.r.get(self._rec(rid))
        return _load(raw, rid)

    def find(self, text: str) -> Record | None:
        """By record id, by completion key text (``source|instance|person|course``) or event id.

        Raises :class:`AmbiguousEventId` when an event id names records of several sources,
        and :class:`UnreadableRecord` when the record exists but cannot be loaded."""
        text = text.strip()
        rec = self.get(text)
        if rec is None and text.count("|") == 3:
            try:
                key = CompletionKey.from_text(text)
            except ValueError:
                key = None
            if key is not None:
                rec = self.get(key.id)
        if rec is None:
            rids = sorted({_text(v).partition(" ")[0] for v in self.r.hvals(self._eid(text))})
            if len(rids) > 1:
                raise AmbiguousEventId(text, rids)
            if rids:
                rec = self.get(rids[0])
        return rec

    def history(self, rid: str) -> list[dict[str, Any]]:
        return [_unpack(h) for h in self.r.lrange(self._hist_key(rid), 0, -1)]

    def ids(self, state: str, since: datetime | None = None) -> list[str]:
        """Every id in a state (last changed at or after ``since``), oldest change first. Ids
        only: a snapshot that later transitions cannot shift, for :meth:`load_many` to read."""
        low = "-inf" if since is None else since.timestamp()
        return [_text(i) for i in self.r.zrangebyscore(self._state(state), low, "+inf")]

    def load_many(self, ids: Sequence[str], batch: int = 500) -> Iterator[Record | Unreadable]:
        """The records, one ``MGET`` per ``batch`` ids; an unloadable one as
        :class:`Unreadable`, a vanished one (purged meanwhile) skipped."""
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            for rid, raw in zip(chunk, self.r.mget([self._rec(i) for i in chunk]), strict=True):
                try:
                    rec = _load(raw, rid)
                except UnreadableRecord as exc:
                    yield Unreadable(id=rid, problems=exc.problems)
                    continue
                if rec is not None:
                    yield rec

    def counts_since(self, since: datetime) -> dict[str, int]:
        """Records per state whose last change was at or after ``since``."""
        with self.r.pipeline(transaction=False) as pipe:
            for state in STATES:
                pipe.zcount(self._state(state), since.timestamp(), "+inf")
            values = pipe.execute()
        return dict(zip(STATES, (int(v) for v in values), strict=True))

    def counts(self) -> dict[str, int]:
        with self.r.pipeline(transaction=False) as pipe:
            for state in STATES:
                pipe.zcard(self._state(state))
            values = pipe.execute()
        return dict(zip(STATES, (int(v) for v in values), strict=True))

    def list(self, state: State | None = None, limit: int = 50) -> list[Record | Unreadable]:
        """Newest first; a record that cannot be loaded is listed as :class:`Unreadable`."""
        index = self.ALL if state is None else self._state(state)
        ids = [_text(i) for i in self.r.zrevrange(index, 0, max(0, limit - 1))]
        if not ids:
            return []
        raws = self.r.mget([self._rec(i) for i in ids])
        out: list[Record | Unreadable] = []
        for rid, raw in zip(ids, raws, strict=True):
            try:
                rec = _load(raw, rid)
            except UnreadableRecord as exc:
                out.append(Unreadable(id=rid, problems=exc.problems))
                continue
            if rec is not None:
                out.append(rec)
        return out

    def remove_unreadable(self, rid: str) -> bool:
        """Delete a record that cannot be loaded (its history and index entries too), so an
        operator can clear what an older version or a damaged write left behind."""
        try:
            self.get(rid)
        except UnreadableRecord:
            pass
        else:
            return False  # absent, or readable: purge, give-up and retry are for those
        with self.r.pipeline() as pipe:
            pipe.delete(self._rec(rid), self._hist_key(rid))
            for state in STATES:
                pipe.zrem(self._state(state), rid)
            for index in (self.ALL, self.DUE, self.OUTBOX, self.DEFERRED):
                pipe.zrem(index, rid)
            pipe.execute()
        return True


_TAKE_STALLED = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
end
return ids
"""

_TAKE_DEFERRED = """

local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], ARGV[1], id)
end
return ids
"""


def utcnow() -> datetime:

    return datetime.now(UTC)
