"""The whole flow of one completion, in one place."""

from __future__ import annotations

from celery import chain
from celery.canvas import Signature

from gradesync.settings import Delivery
from workers import privacy, resources
from workers.tasks import (
    approve,
    fetch_from_lms,
    mark_completed,
    post_result_link,
    resolve_enrolment_component,
    resolve_person,
    tick_attendance,
    tick_pass,
    write_result,
)


def completion_chain(rid: str, delivery: Delivery | None = None) -> Signature:
    """The whole flow of one completion: LMS facts, Coachview identities, then the writes."""
    fetch = fetch_from_lms.si(rid)  # start the attempt; the grade (and mapped ids) from the LMS
    if (delivery or resources.settings().coachview_delivery) == "resultlink":
        # No look-up: Coachview matches the person and course itself, and answers 404 (the
        # daily retry's signal) when it cannot; `gradesync diagnose KEY` tells which is missing.
        return _redacted(
            rid,
            [fetch, post_result_link.s(rid)],  # one signed XML: Coachview does all six effects
        )
    # rest and shadow run the same steps. In shadow (the record's mode: its facts say so) every
    # write step records what it would write — field, old value, new value — instead of writing,
    # and the last one ends the record `shadowed` (workers/tasks.py::_write_step).
    return _redacted(
        rid,
        [
            fetch,
            resolve_person.s(rid),  # LMS person id → Coachview person (external id, then id)
            resolve_enrolment_component.s(rid),  # course → component → the learner's enrolment
            write_result.s(rid),  # 1. the final grade, unless a result is registered
            tick_attendance.s(rid),  # 2. attendance (locked afterwards)
            tick_pass.s(rid),  # 3. pass (locked afterwards)
            mark_completed.s(rid),  # 4. training-request component completed
            approve.s(rid),  # 5 + 6. approved, dated the day of the LMS completion
        ],
    )


def _redacted(rid: str, steps: list[Signature]) -> Signature:
    # Flower shows argsrepr: the opaque record id only, never the context passed along.
    return chain(*(s.set(argsrepr=privacy.label(rid), kwargsrepr="{}") for s in steps))


def enqueue(rid: str, delivery: Delivery | None = None) -> None:
    """Hand a recorded completion to the broker in the record's delivery mode, then clear it
    from the ledger's outbox. A record sent for the first time takes ``delivery``, else this
    process's COACHVIEW_DELIVERY; a resend (sweep, daily pass, retry) keeps the record's."""
    ledger = resources.ledger()
    mode = ledger.delivery(rid, delivery or resources.settings().coachview_delivery)
    completion_chain(rid, mode).apply_async()
    ledger.sent(rid)
