"""The parser for each source's native format: one LMS payload in, what it means out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradesync.event import parse_event
from gradesync.parsed import Completion, Parsed
from gradesync.sources import Installation, Sources
from producers import anewspring, ilias, moodle, xapi

Parser = Callable[[Any], list[Parsed]]
NATIVE: dict[str, Callable[[Any, Any], list[Parsed]]] = {
    "moodle": moodle.parse,
    "ilias": ilias.parse,
    "anewspring": anewspring.parse,
    "xapi": xapi.parse,
}


def canonical(sources: Sources) -> Parser:
    """A canonical event names its installation itself: it must be one in the sources, enabled
    (:class:`~gradesync.sources.InstallationUnknown` / ``InstallationDisabled`` otherwise)."""

    def parse(data: Any) -> list[Parsed]:
        event = parse_event(data)
        sources.admit(event.source, event.source_instance)
        return [Completion(event=event)]

    return parse


def adapter(source: str | None, sources: Sources, instance: str | None = None) -> Parser:
    """The parser for a source's native format (``None`` or ``canonical``: the canonical event),
    bound to the installation it arrived for (``None``: the kind's default route), whose
    settings it reads (instance name, time zone, patterns). Raises
    :class:`~gradesync.sources.InstallationUnknown` or ``InstallationDisabled``."""
    if source is None or source == "canonical":
        return canonical(sources)
    if source not in NATIVE:
        raise ValueError(f"unknown source {source!r}; known sources: {', '.join(NATIVE)}")
    return bound(sources.admit(source, instance))


def bound(inst: Installation) -> Parser:
    """The native parser of ``inst``'s kind, reading ``inst``'s settings."""
    parse = NATIVE[inst.kind]
    return lambda data: parse(data, inst)
