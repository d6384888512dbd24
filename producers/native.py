"""The parser for each source's native format: one LMS payload in, what it means out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradesync.event import parse_event
from gradesync.parsed import Completion, Parsed
from gradesync.settings import Settings
from producers import anewspring, ilias, moodle, xapi

Parser = Callable[[Any], list[Parsed]]
NATIVE: dict[str, Callable[[Any, Settings], list[Parsed]]] = {
    "moodle": moodle.parse,
    "ilias": ilias.parse,
    "anewspring": anewspring.parse,
    "xapi": xapi.parse,
}


def canonical(data: Any) -> list[Parsed]:
    return [Completion(event=parse_event(data))]


def adapter(source: str | None, settings: Settings) -> Parser:
    """The parser for a source's native format (``None`` or ``canonical``: the canonical event),
    bound to the settings it reads (installation names, time zones, patterns)."""
    if source is None or source == "canonical":
        return canonical
    if source not in NATIVE:
        raise ValueError(f"unknown source {source!r}; one of: {', '.join(NATIVE)}")
    parse = NATIVE[source]
    return lambda data: parse(data, settings)
