"""A ledger record: one learner's completion of one course, its state and what happened to it.

The model only: what each event or outcome does to a record is in gradesync/transitions.py
(pure), how records are kept in Redis in gradesync/ledger.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, ValidationError, field_serializer

from gradesync.completion_time import CompletedAtSource
from gradesync.event import CompletionEvent, CompletionKey
from gradesync.merge import Standing, standing
from gradesync.settings import Delivery

State = Literal[
    "queued",
    "in_progress",
    "delivered",
    "unresolved",
    "given_up",
    "failed",
    "shadowed",
    # The LMS said the learner did not pass (xAPI ``failed``, ``success: false``): nothing is
    # written; a later passing statement for the same learner and course proceeds.
    "not_passed",
    # Voided in the LMS before delivery: nothing is written.
    "withdrawn",
]
# The same states in their order, for tables and counts: read off the type, not listed twice.
STATES: tuple[State, ...] = get_args(State)
OPEN_STATES: frozenset[str] = frozenset({"queued", "in_progress"})
# What an operator can queue again (``gradesync retry``).
RETRYABLE: tuple[State, ...] = ("unresolved", "failed", "given_up", "shadowed")
# History entries named after pipeline steps (see workers/tasks.py).
STEP_NAMES: frozenset[str] = frozenset(
    {
        "lms",
        "person",
        "course",
        "resolved",
        "participation",
        "request_component",
        "result_link",
        # Written by the one-write-per-field chain before it: older records' histories.
        "enrolment_component",
        "result",
        "attendance",
        "passed",
        "completed",
        "approved",
    }
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
    # Where the record's date and grade stand in the completion-time order of the events seen
    # (gradesync/merge.py): the earliest event, and the earliest one with a grade. ``None``:
    # stored by an earlier version, or no graded event yet (see :meth:`standings`).
    first_event: Standing | None = None
    grade_event: Standing | None = None

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

    def standings(self) -> tuple[Standing, Standing | None]:
        """The merge's two standings. A record stored before they were kept stands by its
        event; a grade no event carried (fetched from the LMS for the first event) counts as
        the first event's, so no later event takes its place."""
        first = self.first_event or standing(self.event)
        graded = self.grade_event
        if graded is None and self.event.grade is not None:
            graded = first.model_copy(update={"graded": True})
        return first, graded

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
    "created",
    "duplicate",
    "merged",
    "after_delivery",
    "restarted",
    "grade_added",
    "conflict",
    "not_passed",
    "pass_kept",
]


class Admission(BaseModel):
    outcome: Admitted
    record: Record
    enqueue: bool


def dump(record: Record) -> str:
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


def load(raw: Any, rid: str) -> Record | None:
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


def event_scope(event: CompletionEvent, channel: str) -> str:
    """The event-id namespace: the channel the event came in by (the ingress route whose secret
    authenticated it, or the CLI) and the LMS installation it names. A caller on one channel
    cannot claim an event id another channel will send (a canonical caller naming Moodle's
    predictable ids), nor can one installation claim another's."""
    return scope_of(channel, event.source, event.source_instance)


def scope_of(channel: str, source: str, instance: str) -> str:
    """The event-id namespace of a channel and an installation (see :func:`event_scope`)."""
    key = CompletionKey.model_validate(
        {"source": source, "source_instance": instance, "person_id": "-", "course_id": "-"}
    )
    return f"{channel}|" + key.text().rsplit("|", 2)[0]
