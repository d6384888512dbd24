"""Which instant a course was completed at, when the LMS knows it better than its event does.

Moodle stores the completion before it announces it: ``completion_completion::mark_complete
($timecomplete)`` (moodle/moodle ``completion/completion_completion.php``) sets
``timecompleted`` — which the completion cron (``completion/cron.php``) takes from the
criteria's own times — and only then triggers ``\\core\\event\\course_completed``, whose
``timecreated`` is the moment the cron or an import ran: hours or days later on sites whose cron
runs nightly, for bulk imports and recompletion plugins.
``core_completion_get_course_completion_status`` (``completion/classes/external.php``) answers
``completionstatus{completed, aggregation, completions[{type, title, status, complete,
timecompleted, details}]}``, ``aggregation`` being ``COMPLETION_AGGREGATION_ALL = 1`` or
``COMPLETION_AGGREGATION_ANY = 2`` (``lib/completionlib.php``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from gradesync.event import instant_from_epoch, plausible_instant

# ``arrival``: an xAPI statement without a timestamp (it is optional) took its arrival time;
# ``utc_assumed``: its timestamp had no zone and was read as UTC.
CompletedAtSource = Literal["event", "moodle_completion_criteria", "arrival", "utc_assumed"]
AGGREGATION_ALL = 1
AGGREGATION_ANY = 2


class MoodleCriterion(BaseModel):
    """One row of ``completionstatus.completions`` (the fields the rule reads)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    complete: bool
    timecompleted: int | None = None


class MoodleCompletionStatus(BaseModel):
    """``completionstatus`` of ``core_completion_get_course_completion_status``."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    completed: bool
    aggregation: int
    completions: list[MoodleCriterion]


class CompletionInstant(BaseModel):
    model_config = ConfigDict(frozen=True)
    at: datetime
    source: CompletedAtSource


def _moment(epoch: int | None) -> datetime | None:
    """A usable instant, or ``None``: Moodle writes 0 or null for "no time", and a time outside
    the window every completion must lie in (see gradesync.event) is no time either."""
    if epoch is None:
        return None
    try:
        return plausible_instant(instant_from_epoch(epoch))
    except ValueError:
        return None


def moodle_completion_instant(
    status: MoodleCompletionStatus, event_time: datetime
) -> CompletionInstant:
    """The completion instant from Moodle's criteria, else the event's ``timecreated``.

    All criteria required → the latest completed criterion's time (the course was complete
    once the last one was); any one suffices → the earliest (Moodle's cron stores the latest
    in both cases, but with "any" the course was complete from the first). When a completed
    criterion has no time, or the aggregation is not one of the two, Moodle gives no usable
    time: the event's.
    The event is an upper bound (Moodle stores the completion before it triggers the event),
    so a criterion time after it (the learner was reset and completed again since) is not
    this completion's: the event's time again.
    """
    fallback = CompletionInstant(at=event_time, source="event")
    done = [_moment(c.timecompleted) for c in status.completions if c.complete]
    times = [t for t in done if t is not None]
    if not done or len(times) != len(done):
        return fallback
    if status.aggregation == AGGREGATION_ALL:
        chosen = max(times)
    elif status.aggregation == AGGREGATION_ANY:
        chosen = min(times)
    else:
        return fallback
    if chosen > event_time:
        return fallback
    return CompletionInstant(at=chosen, source="moodle_completion_criteria")
