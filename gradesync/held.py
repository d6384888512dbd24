"""Records waiting on their installation: queued, spending no attempt, while the installation
is disabled (``installation_disabled``) or unknown to this process's sources
(``unknown_installation``: the ingress was restarted with a new sources file before the workers,
or the installation was removed with records still queued). Neither is the record's fault, so
neither fails it: it waits until a worker that knows the installation enabled picks it up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import NamedTuple

from gradesync.ledger import Ledger
from gradesync.record import LedgerError, Record
from gradesync.sources import InstallationUnknown, Sources

DISABLED = "installation_disabled"
UNKNOWN = "unknown_installation"
HELD_CODES = (DISABLED, UNKNOWN)


def held_by_installation(record: Record, sources: Sources) -> LedgerError | None:
    """Why ``record`` must wait for its installation, or ``None`` when it may go on."""
    try:
        inst = sources.find(record.event.source, record.event.source_instance)
    except InstallationUnknown:
        name = f"{record.event.source}/{record.event.source_instance}"
        return LedgerError(
            code=UNKNOWN,
            message=f"{name} is not in this worker's sources: restart the workers and beat "
            "with the sources file that names it (they then release it), or "
            "`gradesync give-up KEY` if the installation is gone for good",
        )
    if not inst.enabled:
        return LedgerError(code=DISABLED, message=f"{inst.name} is disabled")
    return None


def waiting(ledger: Ledger) -> Iterator[Record]:
    """Queued records held for their installation (read from every queued record)."""
    for rec in ledger.load_many(ledger.ids("queued")):
        if isinstance(rec, Record) and rec.last_error and rec.last_error.code in HELD_CODES:
            yield rec


class Released(NamedTuple):
    ids: list[str]
    # Chosen but still waiting: their installation is disabled or unknown in ``sources``.
    still_held: int


def release_held(
    ledger: Ledger,
    sources: Sources,
    now: datetime,
    chosen: Callable[[Record], bool] = lambda _: True,
) -> Released:
    """Held (and ``chosen``) records whose installation is now known and enabled: due at once,
    so the next sweep sends them instead of after the 15-minute recheck."""
    picked = [rec for rec in waiting(ledger) if chosen(rec)]
    ids = [rec.id for rec in picked if held_by_installation(rec, sources) is None]
    ledger.hurry_deferred(ids, now)
    return Released(ids, len(picked) - len(ids))
