"""What a producer makes of one native LMS payload: a completion, or a reason to ignore it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from gradesync.event import CompletionEvent

# The worker must still fetch the grade from the LMS before Coachview can be written.
NEEDS_GRADE = "grade"


class Completion(BaseModel):
    model_config = ConfigDict(frozen=True)
    event: CompletionEvent
    needs: tuple[str, ...] = ()


class Ignored(BaseModel):
    """Not a completion (another event, an unfinished status): accepted, never enqueued."""

    model_config = ConfigDict(frozen=True)
    reason: str


Parsed = Completion | Ignored


def canonical(data: Any) -> list[Parsed]:
    from gradesync.event import parse_event

    return [Completion(event=parse_event(data))]


def adapter(source: str | None) -> Callable[[Any], list[Parsed]]:
    """The parser for a source's native format (``None``: the canonical event)."""
    from producers import anewspring, ilias, moodle, xapi

    parsers: dict[str | None, Callable[[Any], list[Parsed]]] = {
        None: canonical,
        "canonical": canonical,
        "moodle": moodle.parse,
        "ilias": ilias.parse,
        "anewspring": anewspring.parse,
        "xapi": xapi.parse,
    }
    if source not in parsers:
        raise ValueError(f"unknown source {source!r}; one of: moodle, ilias, anewspring, xapi")
    return parsers[source]


__all__ = [
    "Completion",
    "Ignored",
    "Parsed",
    "ValidationError",
    "adapter",
    "canonical",
]
