"""The pipeline's subtasks. Each takes the record id (the only argument Flower shows) and a
small context from the step before; each reads Coachview's state before it writes.

The context carries the record's facts as of the end of the step before (``facts``): the same
round trip that records a step done reads the record back, so a step needs no ledger read of its
own, a running chain still follows a replaced event, and a record closed meanwhile (an operator
gave up) stops the chain at the next step boundary."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, NoReturn

import redis
from celery import Task
from celery.exceptions import Ignore, Reject, Retry
from celery.signals import beat_init, worker_init, worker_ready

from gradesync import logs, metrics
from gradesync.coachview.budget import BudgetExhausted, spending_for
from gradesync.coachview.client import PARTICIPATION, REQUEST_COMPONENT, Entity, Writable
from gradesync.coachview.placement import place
from gradesync.coachview.resultlink import ResultMessage, learner, render
from gradesync.entities import Participation, RequestComponent
from gradesync.errors import (
    Permanent,
    PreconditionFailed,
    RemoteError,
    Transient,
)
from gradesync.held import held_by_installation, release_held
from gradesync.ledger import utcnow
from gradesync.lms.enrich import enrich
from gradesync.policy import transient_backoff
from gradesync.record import LedgerError, Record, UnreadableRecord
from gradesync.settings import (
    NOT_READ,
    ConfigurationError,
    ignored_variables,
    persoonid_matching_off,
    require_coachview,
    require_lms_apis,
)
from gradesync.steps import Decision, Write, plan_participation, plan_request_component, would
from workers import faultpoint, privacy, resources, waits
from workers.app import app

log = logs.get("gradesync.worker")
Context = dict[str, Any]
STALE_REREADS = 3
# How long a record of a disabled installation waits before it is looked at again.
DISABLED_RECHECK = timedelta(minutes=15)


class PipelineTask(Task):  # type: ignore[misc]
    """Maps Coachview outcomes to ledger states; the step bodies only do the happy path."""

    max_retries = None  # bounded by settings.transient_max_retries below
    step = "?"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        rid: str = args[-1]
        started = time.perf_counter()
        # Coachview requests count against the record's delivery mode (`gradesync status`).
        facts = args[0].get("facts", {}) if isinstance(args[0], dict) else {}
        mode = str(facts.get("delivery") or "other")
        try:
            with spending_for(mode):
                result = self.run(*args, **kwargs)
        except RemoteError as exc:
            self._handle(rid, exc, started)
            raise AssertionError("unreachable") from exc
        except (Ignore, Reject, Retry, redis.RedisError):
            # Celery's own control flow; a Redis outage is the broker's and the stall sweep's
            # to ride out (the record cannot be moved without Redis anyway).
            raise
        except UnreadableRecord as exc:
            log.error("step", key=rid, step=self.step, outcome="unreadable", problems=exc.problems)
            metrics.count_failure(resources.ledger().r, "unreadable_record")
            raise Ignore() from None
        except Exception as exc:
            self._unexpected(rid, exc, started)
            raise Ignore() from None
        log.info("step", key=rid, step=self.step, outcome="ok", duration_ms=_ms(started))
        faultpoint.hold_after(self.step)
        return result

    def _unexpected(self, rid: str, exc: Exception, started: float) -> None:
        """A bug or an answer no check foresaw: the record ends ``failed`` where an operator
        sees it, instead of staying ``in_progress`` with a message redelivered forever. Only
        the exception's type and place are kept: its text may hold a grade or a person id."""
        frame = exc.__traceback__
        while frame is not None and frame.tb_next is not None:
            frame = frame.tb_next
        where = f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame else "?"
        error = LedgerError(
            code="unexpected_error", message=f"{self.step}: {type(exc).__name__} at {where}"
        )
        state = resources.ledger().fail(rid, utcnow(), error)
        if state != "shadowed":  # a shadow run's failure is what to fix, not a failure
            metrics.count_failure(resources.ledger().r, error.code, _installation_name(rid))
        log.error(
            "step",
            key=rid,
            step=self.step,
            outcome=state or "closed",
            error=error.code,
            exception=type(exc).__name__,
            at=where,
            duration_ms=_ms(started),
        )

    def _handle(self, rid: str, exc: RemoteError, started: float) -> None:
        s = resources.settings()
        ledger = resources.ledger()
        error = LedgerError(code=exc.code, message=exc.message)
        fields = {"key": rid, "step": self.step, "error": exc.code, "duration_ms": _ms(started)}
        if isinstance(exc, Transient | PreconditionFailed):
            retries = self.request.retries
            if retries < s.transient_max_retries:
                longest = waits.max_inline_wait(s.visibility_timeout_s)
                delay = transient_backoff(
                    retries,
                    s.transient_backoff_s,
                    min(s.transient_backoff_max_s, longest),  # our own backoff stays in-task
                    getattr(exc, "retry_after", None),
                )
                countdown = waits.countdown(delay, s.visibility_timeout_s)
                if countdown is None:  # Coachview asked for a long wait: wait in the ledger
                    _defer(rid, utcnow() + timedelta(seconds=delay), error, fields)
                # Waiting on purpose is progress: the stall sweep leaves this run alone.
                ledger.busy_until(rid, utcnow() + timedelta(seconds=countdown))
                log.warning("step", outcome="retry", retry_in_s=round(countdown, 2), **fields)
                raise self.retry(
                    countdown=countdown, exc=exc, argsrepr=privacy.label(rid), kwargsrepr="{}"
                )
        if isinstance(exc, BudgetExhausted):
            _defer(rid, datetime.fromtimestamp(exc.resume_at, UTC), error, fields)
        if isinstance(exc, Permanent):
            state = ledger.fail(rid, utcnow(), error)
            if state != "shadowed":
                metrics.count_failure(ledger.r, exc.code, _installation_name(rid))
            log.warning("step", outcome=state or "closed", **fields)
            raise Ignore()
        state = ledger.unresolved(
            rid,
            utcnow(),
            error,
            max_retries=s.retry_max_attempts,
            retry_time=s.retry_time,
            tz=s.tz,
        )
        log.info("step", outcome=state or "closed", **fields)
        raise Ignore()


def _defer(rid: str, until: datetime, error: LedgerError, fields: dict[str, Any]) -> NoReturn:
    """Back to ``queued`` until ``until``; the worker is free at once (see workers/waits.py)."""
    resources.ledger().defer(rid, utcnow(), until, error)
    log.warning("step", outcome="deferred", resume_at=until.isoformat(), **fields)
    raise Ignore()


def _installation_name(rid: str) -> str:
    """``kind/instance`` of a record, for a failure metric (read only when one fails)."""
    try:
        rec = resources.ledger().get(rid)
    except UnreadableRecord:
        rec = None
    return metrics.UNKNOWN if rec is None else f"{rec.event.source}/{rec.event.source_instance}"


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _running(record: Record | None) -> Record:
    """The record while this run is open; a closed or missing one ends the chain quietly."""
    if record is None or record.state != "in_progress":
        raise Ignore()
    return record


def _facts(record: Record) -> Context:
    """What the next steps need from the record (Coachview ids, grade, approval date, and
    whether the writes are made or only recorded: ``delivery``)."""
    return {
        "person_ref": record.coachview_person_id,
        # Per installation: one naming learners by the LMS's internal id is not matched on
        # Coachview's PersoonId (Settings.person_match_for).
        "person_match": list(
            resources.settings().person_match_for(record.event.source, record.event.source_instance)
        ),
        "course_ref": record.coachview_course_id,
        "grade": record.event.grade,
        "approved_on": record.event.approval_date(resources.settings().tz).isoformat(),
        # A worker configured for shadow never writes, whatever mode the record came in with.
        "delivery": "shadow"
        if resources.settings().coachview_delivery == "shadow"
        else record.delivery,
    }


def _person_match(facts: Context) -> tuple[str, ...]:
    """The facts' person match fields (a chain queued by an earlier version has none)."""
    fields = facts.get("person_match")
    return tuple(fields) if fields else resources.settings().person_match_order


def _done(
    rid: str,
    step: str,
    ctx: Context,
    note: Context | None = None,
    writes: list[Context] | None = None,
    **more: Any,
) -> Context:
    """Record the step in the ledger; the context for the next step, with fresh facts."""
    record = resources.ledger().step_done(rid, step, utcnow(), note, writes)
    return {**ctx, **more, "facts": _facts(_running(record))}


def pipeline_task(step: str) -> Any:
    return app.task(bind=True, base=PipelineTask, name=f"gradesync.{step}", step=step)


@worker_init.connect
def _refuse_bad_configuration(**_: object) -> None:
    """No worker starts that would deliver into the simulator's defaults outside development, or
    when a source in use could not get its grades (what ``fetch_from_lms`` needs); celery logs
    and ignores an ``Exception`` from a signal, so this exits."""
    problems: list[str] = []
    gaps: list[str] = []
    try:
        require_coachview(resources.settings())
    except ConfigurationError as exc:
        problems.append(str(exc))
    try:
        gaps = require_lms_apis(resources.settings())
    except ConfigurationError as exc:
        problems.append(str(exc))
    if problems:
        sys.stderr.write(f"gradesync worker refuses to start: {'; '.join(problems)}\n")
        raise SystemExit(2)
    for gap in gaps:
        log.warning("lms_api_not_configured", detail=gap)
    if unread := ignored_variables(resources.settings(), os.environ):
        log.warning("variables_not_read", variables=unread, detail=NOT_READ)
    for note in persoonid_matching_off(resources.settings()):
        log.warning("persoonid_matching_off", detail=note)


@worker_ready.connect
@beat_init.connect
def _release_held(**_: object) -> None:
    """Records that waited for an installation this worker (or beat) knows enabled go on at
    once (the next sweep sends them), not after their 15-minute recheck."""
    try:
        released = release_held(resources.ledger(), resources.settings().sources, utcnow())
    except redis.RedisError as exc:  # the recheck still releases them
        log.warning("release_held", outcome="redis_error", exception=type(exc).__name__)
        return
    if released.ids:
        log.info("release_held", records=len(released.ids), still_held=released.still_held)


@pipeline_task("fetch_from_lms")
def fetch_from_lms(self: PipelineTask, rid: str) -> Context:
    ledger, s = resources.ledger(), resources.settings()
    waiting = ledger.get(rid)
    held = None if waiting is None else held_by_installation(waiting, s.sources)
    if held is not None:
        # Held before the attempt starts: it stays queued, spending no attempt, and is looked
        # at again after a while; a worker starting with the installation enabled (and known)
        # releases it at once (see release_held).
        _defer(rid, utcnow() + DISABLED_RECHECK, held, {"key": rid, "step": self.step})
    record = _running(ledger.start(rid, utcnow()))
    found = enrich(record, s)
    if found is not None:
        record = _running(
            ledger.enriched(
                rid,
                utcnow(),
                found.grade,
                found.match_person_id,
                found.match_course_id,
                found.note,
                found.instant,
            )
        )
    return {"facts": _facts(record)}


@pipeline_task("resolve")
def resolve(self: PipelineTask, ctx: Context, rid: str) -> Context:
    facts = ctx["facts"]
    placement = place(
        resources.directory(),
        resources.rosters(),
        facts["person_ref"],
        facts["course_ref"],
        _person_match(facts),
    )
    return _done(
        rid,
        "resolved",
        ctx,
        person=placement.person.id,
        participation=placement.participation.model_dump(mode="json"),
        request=placement.request.model_dump(mode="json"),
    )


@pipeline_task("post_result_link")
def post_result_link(self: PipelineTask, ctx: Context, rid: str) -> Context:
    # A message redelivered after the run ended (Redis's visibility timeout, a restored unacked
    # message) must not post again: unlike the REST steps, a POST reads nothing first.
    _running(resources.ledger().get(rid))
    s = resources.settings()
    facts = ctx["facts"]
    if facts.get("delivery") == "shadow":  # never written by a shadow worker (see _facts)
        ledger = resources.ledger()
        planned = {"writes": [{"field": "result_link", "old": None, "new": "one signed message"}]}
        ledger.shadow_step(rid, "result_link", utcnow(), planned)
        ledger.shadowed(rid, utcnow(), facts["approved_on"])
        return ctx
    extern_id, person_id = learner(facts["person_ref"], _person_match(facts))
    message = ResultMessage(
        extern_id=extern_id,
        person_id=person_id,
        course_id=facts["course_ref"],
        grade=facts["grade"],
        completed_on=date.fromisoformat(facts["approved_on"]),
    )
    resources.coachview().post_result_link(
        render(message),
        s.coachview_resultlink_plugin_key,
        s.coachview_resultlink_secret.get_secret_value(),
    )
    ledger = resources.ledger()
    ledger.step_done(rid, "result_link", utcnow())
    ledger.deliver(rid, utcnow())
    return ctx


def _conditional_write(
    kind: Writable[Entity], current: Entity, decide: Callable[[Entity], Decision]
) -> tuple[Entity, Decision, list[Context] | None]:
    """One ``PUT`` with ``If-Match`` carrying what ``decide`` finds missing; on 412 the entity is
    read again and decided again (a bounded number of times). Returns the entity, the decision
    and the fields written (old and new; ``None``: nothing was written)."""
    client = resources.coachview()
    if current.etag is None:  # never write unconditioned: read the etag (and the state) first
        current = client.get(kind, current.id)
    decision = decide(current)
    for _ in range(STALE_REREADS):
        if not isinstance(decision, Write):
            return current, decision, None
        try:
            written = client.update(kind, current.id, decision.fields, current.etag or "")
            return written, decision, would(decision, current)["writes"]
        except PreconditionFailed:
            # Changed since we read it (often: our own write landed before a redelivery).
            current = client.get(kind, current.id)
            decision = decide(current)
    if not isinstance(decision, Write):
        return current, decision, None
    raise PreconditionFailed(f"{kind.what}: the record kept changing under us")


def _shadowing(ctx: Context) -> bool:
    return bool(ctx["facts"].get("delivery") == "shadow")  # .get: a context from before shadow


@pipeline_task("write_participation")
def write_participation(self: PipelineTask, ctx: Context, rid: str) -> Context:
    """1. the final grade, unless a result is registered; 2. attendance; 3. pass."""
    grade = ctx["facts"]["grade"]
    current = Participation.model_validate(ctx["participation"])

    def decide(participation: Participation) -> Decision:
        return plan_participation(participation, grade)

    if _shadowing(ctx):
        record = resources.ledger().shadow_step(
            rid, "participation", utcnow(), would(decide(current), current)
        )
        return {**ctx, "facts": _facts(_running(record))}
    written, decision, writes = _conditional_write(PARTICIPATION, current, decide)
    note = None if decision.kept is None else decision.kept.note()
    return _done(
        rid, "participation", ctx, note, writes, participation=written.model_dump(mode="json")
    )


@pipeline_task("write_request_component")
def write_request_component(self: PipelineTask, ctx: Context, rid: str) -> Context:
    """4. completed; 5. approved; 6. dated the day of the LMS completion."""
    approved_on = ctx["facts"]["approved_on"]
    current = RequestComponent.model_validate(ctx["request"])

    def decide(request: RequestComponent) -> Decision:
        return plan_request_component(request, date.fromisoformat(approved_on))

    ledger = resources.ledger()
    if _shadowing(ctx):
        ledger.shadow_step(rid, "request_component", utcnow(), would(decide(current), current))
        ledger.shadowed(rid, utcnow(), approved_on)
        return ctx
    _, _, writes = _conditional_write(REQUEST_COMPONENT, current, decide)
    ledger.step_done(rid, "request_component", utcnow(), writes=writes)
    ledger.deliver(rid, utcnow())  # Coachview now holds all six effects
    return ctx
