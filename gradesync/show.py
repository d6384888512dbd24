"""``gradesync show`` in words: a record's fields and history as the console tells them (in
English, times in ``GRADESYNC_TIMEZONE`` with their zone), never a Python dict or ``None``.
``--json`` keeps the data as stored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from console.i18n import translator
from console.story import error_text, local, note_text, tell

FIELDS = (
    "id",
    "key",
    "state",
    "delivery",
    "attempts",
    "daily_retries",
    "first_seen",
    "updated",
    "last_attempt",
    "next_attempt",
    "last_error",
    "steps",
    "outcome",
)
NOTHING = "—"
t = translator("en")


def value(name: str, raw: object, tz: ZoneInfo) -> str:
    """One field of ``Record.public`` as text."""
    if raw is None or raw == [] or raw == "":
        return NOTHING
    if name == "last_error":
        title, message = error_text(raw, t)
        return f"{title} ({message})" if message else title
    if name == "outcome":
        return note_text(raw, t) or str(
            raw.get("code", NOTHING) if isinstance(raw, Mapping) else raw
        )
    if isinstance(raw, list):
        return ", ".join(str(x) for x in raw)
    return local(raw, tz)


def event_text(event: Mapping[str, Any]) -> str:
    return " · ".join(f"{k} {v}" for k, v in event.items() if v not in (None, ""))


def history(entries: list[dict[str, Any]], tz: ZoneInfo) -> list[tuple[str, str]]:
    """(when, what happened) per entry; written fields as ``field: old → new``."""
    rows = []
    for entry in entries:
        line = tell(entry, t, tz)
        parts = [line.text, *(f"{c.field}: {c.old} → {c.new}" for c in line.changes)]
        if line.technical:
            parts.append(f"({line.technical})")
        rows.append((line.at, "\n".join(parts)))
    return rows
