"""Durably record a completion, then hand it to the broker: the one way in for every producer."""

from __future__ import annotations

from collections.abc import Callable

from gradesync.completion_time import CompletedAtSource
from gradesync.event import CompletionEvent
from gradesync.ledger import Ledger, utcnow
from gradesync.record import Admission, LedgerError


def submit(
    event: CompletionEvent,
    ledger: Ledger,
    send: Callable[[str], None],
    needs: tuple[str, ...] = (),
    channel: str = "canonical",
    instant_source: CompletedAtSource = "event",
    passed: bool = True,
) -> Admission:
    """``needs``: what the worker must fetch from the LMS first (e.g. the grade); ``channel``:
    where the event came in (its event id's namespace, see ``Ledger.admit``); ``passed``
    false records a learner who did not pass (nothing to send)."""
    admission = ledger.admit(event, utcnow(), needs, channel, instant_source, passed)

    if admission.enqueue:
        send(admission.record.id)
    return admission


def record_refused(
    event: CompletionEvent,
    ledger: Ledger,
    reason: str,
    channel: str,
    needs: tuple[str, ...] = (),
) -> Admission | None:
    """A completion an authenticated sender sent with an implausible field: a ``failed`` record
    (``implausible_event``) naming the field, never sent. ``None`` when its completion already
    has a record: that one is not touched by an event that cannot be trusted."""
    existing = ledger.get(event.key.id)
    if existing is not None:  # the same webhook again is its own record; another is left alone
        same = existing.event.id == event.id
        return Admission(outcome="duplicate", record=existing, enqueue=False) if same else None
    now = utcnow()
    admission = ledger.admit(event, now, needs, channel)
    if admission.outcome == "created":
        ledger.sent(admission.record.id, now)
        ledger.fail(admission.record.id, now, LedgerError(code="implausible_event", message=reason))
        admission = admission.model_copy(
            update={"record": ledger.get(admission.record.id) or admission.record}
        )
    return admission
