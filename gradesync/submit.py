"""Durably record a completion, then hand it to the broker: the one way in for every producer."""

from __future__ import annotations

from collections.abc import Callable

from gradesync.completion_time import CompletedAtSource
from gradesync.event import CompletionEvent
from gradesync.ledger import Ledger, utcnow
from gradesync.record import Admission


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
