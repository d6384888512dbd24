"""Records waiting on their installation (gradesync/held.py): which are held, why, and which a
worker that knows the installation releases. fakeredis; "now" is the real clock, since the
ledger's deferral lives beside fakeredis's."""

from __future__ import annotations

from datetime import timedelta

import fakeredis

from gradesync.event import CompletionEvent
from gradesync.held import DISABLED, UNKNOWN, held_by_installation, release_held, waiting
from gradesync.ledger import Ledger, utcnow
from gradesync.record import LedgerError, Record
from gradesync.sources import Sources

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def sources(*installations: dict[str, object]) -> Sources:
    return Sources.parse({"installations": list(installations)}, {})


ON: dict[str, object] = {"kind": "xapi", "instance": "on", "secret": WHSEC}
OFF: dict[str, object] = {"kind": "xapi", "instance": "off", "secret": WHSEC, "enabled": False}


def event(instance: str, person: str = "57") -> CompletionEvent:
    return CompletionEvent.model_validate(
        {
            "source": "xapi",
            "source_instance": instance,
            "person_id": person,
            "course_id": "12",
            "completed_at": (utcnow() - timedelta(days=1)).isoformat(),
        }
    )


def queued(ledger: Ledger, instance: str, person: str, code: str | None) -> str:
    """A queued record, deferred with ``code`` as its last error (``None``: never tried)."""
    now = utcnow()
    rid = ledger.admit(event(instance, person), now).record.id
    if code is not None:
        error = LedgerError(code=code, message=f"{code} message")
        ledger.defer(rid, now, now + timedelta(minutes=15), error)
    return rid


def test_why_a_record_waits_names_its_installation() -> None:
    s = sources(ON, OFF)
    ledger = Ledger(fakeredis.FakeRedis())
    record = ledger.get(queued(ledger, "gone", "57", None))
    assert isinstance(record, Record)
    unknown = held_by_installation(record, s)
    assert unknown == LedgerError(
        code=UNKNOWN,
        message="xapi/gone is not in this worker's sources: restart the workers and beat with "
        "the sources file that names it (they then release it), or `gradesync give-up KEY` "
        "if the installation is gone for good",
    )
    disabled = held_by_installation(record.model_copy(update={"event": event("off")}), s)
    assert disabled == LedgerError(code=DISABLED, message="xapi/off is disabled")
    assert held_by_installation(record.model_copy(update={"event": event("on")}), s) is None


def test_only_queued_records_held_for_their_installation_wait() -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    unknown = queued(ledger, "gone", "1", UNKNOWN)
    disabled = queued(ledger, "off", "2", DISABLED)
    queued(ledger, "on", "3", "budget_exhausted")  # deferred for another reason
    queued(ledger, "on", "4", None)  # queued, never tried: no last error
    assert sorted(r.id for r in waiting(ledger)) == sorted([unknown, disabled])


def test_release_says_how_many_chosen_records_still_wait() -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    now = utcnow()
    known = queued(ledger, "on", "1", UNKNOWN)
    queued(ledger, "off", "2", DISABLED)
    queued(ledger, "gone", "3", UNKNOWN)
    other = queued(ledger, "on", "4", UNKNOWN)
    released = release_held(ledger, sources(ON, OFF), now, lambda rec: rec.id != other)
    assert released.ids == [known] and released.still_held == 2
    assert ledger.take_deferred(now + timedelta(seconds=1)) == [known]
