"""The whole flow of one completion, in one place."""

from __future__ import annotations

from celery import chain
from celery.canvas import Signature

from gradesync import keys
from gradesync.ledger import utcnow
from gradesync.settings import Delivery
from workers import privacy, resources
from workers.tasks import (
    fetch_from_lms,
    post_result_link,
    resolve,
    write_participation,
    write_request_component,
)


def completion_chain(rid: str, delivery: Delivery | None = None) -> Signature:
    """The whole flow of one completion: LMS facts, Coachview identities, then the writes."""
    # The steps that start work wait behind queued write steps (keys.STARTING_PRIORITY):
    # records are finished depth-first, so a budget running out leaves few half-resolved.
    starting = {"priority": keys.STARTING_PRIORITY}
    # start the attempt; the grade (and mapped ids) from the LMS
    fetch = fetch_from_lms.si(rid).set(**starting)
    if (delivery or resources.settings().coachview_delivery) == "resultlink":
        # No look-up: Coachview matches the person and course itself, and answers 404 (the
        # daily retry's signal) when it cannot; `gradesync diagnose KEY` tells which is missing.
        return _redacted(
            rid,
            [fetch, post_result_link.s(rid)],  # one signed XML: Coachview does all six effects
        )
    # rest and shadow run the same steps: one conditional PUT per entity, carrying only the
    # fields still missing (gradesync/steps.py). In shadow (the record's mode: its facts say
    # so) each write step records what it would write — field, old value, new value — instead
    # of writing, and the last one ends the record `shadowed`.
    return _redacted(
        rid,
        [
            fetch,
            # person, course, participation + request component (the course's roster or direct)
            resolve.s(rid).set(**starting),
            # 1. the final grade unless a result is registered, 2. attendance, 3. pass
            write_participation.s(rid),
            # 4. training-request component completed, 5. approved, 6. dated the LMS day
            write_request_component.s(rid),
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
    ledger.sent(rid, utcnow())
