"""Events from files (``gradesync enqueue``, ``backfill``): parse, record, enqueue, report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from gradesync.event import describe
from gradesync.ledger import Ledger
from gradesync.parsed import Completion, Parsed, Rejected
from gradesync.settings import Settings
from gradesync.sources import InstallationDisabled, InstallationUnknown
from gradesync.submit import submit
from producers.native import adapter

Line = dict[str, Any]


class Intake:
    def __init__(
        self,
        parse: Callable[[Any], list[Parsed]],
        ledger: Ledger,
        send: Callable[[str], None],
        channel: str = "canonical",
    ) -> None:
        self.parse, self.ledger, self.send, self.channel = parse, ledger, send, channel

    @classmethod
    def for_source(
        cls,
        source: str | None,
        ledger: Ledger,
        settings: Settings,
        send: Callable[[str], None],
        instance: str | None = None,
    ) -> Intake:
        """Raises ``ValueError`` for an unknown source, ``InstallationUnknown`` or
        ``InstallationDisabled`` for an installation events may not be recorded for."""
        # A native payload fed by hand shares its webhook's event-id namespace: re-feeding a
        # missed webhook body is recognised as the same event.
        parse = adapter(source, settings.sources, instance)
        return cls(parse, ledger, send, source or "canonical")

    def take(self, position: int, data: Any, error: str | None = None) -> list[Line]:
        """One input item → one report line per event in it (an LPData file holds many)."""
        if error is not None:
            return [_rejected(position, error)]
        try:
            parsed = self.parse(data)
        except ValidationError as exc:
            return [_rejected(position, describe(exc))]
        except ValueError as exc:
            return [_rejected(position, str(exc))]
        except (InstallationUnknown, InstallationDisabled) as exc:
            # A canonical event names its installation: one not in the sources (or disabled)
            # is refused, never filed under a name no configuration stands behind.
            return [_rejected(position, f"source_instance: {exc}")]
        return [self._record(position, p) for p in parsed]

    def _record(self, position: int, parsed: Parsed) -> Line:
        if isinstance(parsed, Rejected):
            return _rejected(position, parsed.reason)
        if not isinstance(parsed, Completion):
            return {
                "item": position,
                "accepted": True,
                "outcome": "ignored",
                "reason": parsed.reason,
            }
        if parsed.refused is not None:  # an operator is here to read it: the line is refused
            return _rejected(position, parsed.refused)
        admission = submit(parsed.event, self.ledger, self.send, parsed.needs, self.channel)
        if admission.outcome == "conflict":
            return _rejected(position, "event_id was used before for another event")
        return {
            "item": position,
            "accepted": True,
            "outcome": admission.outcome,
            "key": admission.record.id,
            "event_id": parsed.event.id,
            "state": admission.record.state,
        }

    @staticmethod
    def describe(line: Line) -> str:
        n = f"#{line['item']}"
        if line["outcome"] == "rejected":
            return f"{n} rejected: {line['error']}"
        if line["outcome"] == "ignored":
            return f"{n} ignored: {line['reason']}"
        return f"{n} accepted {line['key']} {line['state']} ({line['outcome']})"


def _rejected(position: int, error: str) -> Line:
    return {"item": position, "accepted": False, "outcome": "rejected", "error": error}
