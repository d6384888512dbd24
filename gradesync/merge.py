"""Several events for one completion key before delivery: what the record holds (pure, no I/O).

The rule (shared/contract.md): what delivering the events **in LMS completion-time order** under
first-result-wins would give — the earliest completion's date and ids, its grade or, when it has
none, the grade of the next completion that has one. The arrival order never matters, so the
result is a pair of minimums over the events seen: the first event overall and the first event
with a grade. Each is kept on the record as a :class:`Standing` (its order key), and a new event
only has to be compared with the two.

Equal completion instants (an ILIAS push and the poller's row of the same change, a webhook and a
canonical copy) are ordered by a rule that looks at the events alone, never at their arrival: one
with a grade before one without, then the smaller event id, then the smaller body digest (events
with the same id and body are the same event).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from gradesync.event import CompletionEvent, body_hash


class Standing(BaseModel):
    """Where an event stands in the completion-time order: its order key, nothing personal."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    graded: bool
    event_id: str
    digest: str

    def order(self) -> tuple[datetime, bool, str, str]:
        # ``not graded``: False sorts first, so of two equal instants the graded one leads.
        return (self.at.astimezone(UTC), not self.graded, self.event_id, self.digest)


def standing(event: CompletionEvent) -> Standing:
    return Standing(
        at=event.completed_at,
        graded=event.grade is not None,
        event_id=event.id,
        digest=body_hash(event),
    )


class Merged(BaseModel):
    """The record's event after a merge, and the two standings to keep for the next one."""

    event: CompletionEvent
    first: Standing
    graded: Standing | None
    # The new event is now the earliest: its date (and needs) replace the record's.
    new_first: bool
    # The new event now provides the grade.
    new_grade: bool


def _earlier(a: Standing, b: Standing | None) -> bool:
    return b is None or a.order() < b.order()


def merge(
    current: CompletionEvent,
    first: Standing,
    graded: Standing | None,
    new: CompletionEvent,
) -> Merged:
    """``current``: the record's event as it stands (the first event's date and ids, the grade
    in force — possibly one fetched from the LMS, which no later event without a grade erases);
    ``first`` / ``graded``: the standings of the earliest event and of the earliest graded one."""
    mine = standing(new)
    new_first = _earlier(mine, first)
    new_grade = mine.graded and _earlier(mine, graded)
    base = new if new_first else current
    grade = new.grade if new_grade else current.grade
    return Merged(
        event=base.model_copy(update={"grade": grade}),
        first=mine if new_first else first,
        graded=mine if new_grade else graded,
        new_first=new_first,
        new_grade=new_grade,
    )
