"""Moodle: the ``local_webhooks`` plugin's POST body in, a canonical completion out.

Source: valentineus/moodle-webhooks ``classes/handler.php`` posts
``json_encode($event->get_data())`` with the service's ``token`` added (later versions also
``host`` and ``extra``); the data is

Moodle's event record (``core\\event\\base::get_data``): ``eventname``, ``objectid``,
``courseid``, ``userid`` (the acting user), ``relateduserid`` (the learner), ``timecreated``.
For ``\\core\\event\\course_completed`` the ``objectid`` is the ``course_completions`` row.
Ids may arrive as strings. Sample: tests/fixtures/moodle-local_webhooks-course_completed.json.

local_webhookengine (thepankajzx/moodle-local_webhookengine ``classes/payload_builder.php``,
signed per Standard Webhooks by ``classes/signer.php``) wraps the same data in an envelope:
``{id, schema, type, eventname, created, site, event: {component, action, target, objectid,
…, courseid, userid, relateduserid, timecreated}}``. Sample: tests/conformance/moodle/.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gradesync.event import CompletionEvent, Identifier, instant_from_epoch, plausible_instant
from gradesync.parsed import NEEDS_GRADE, Completion, Ignored, Parsed
from gradesync.sources import MoodleSource

COURSE_COMPLETED = "\\core\\event\\course_completed"


def implausible(timecreated: int) -> str | None:
    """Why ``timecreated`` cannot be this completion's time, or ``None``."""
    try:
        plausible_instant(instant_from_epoch(timecreated))
    except ValueError as exc:
        return f"timecreated {timecreated} {exc}"
    return None


class MoodleEnvelope(BaseModel):
    model_config = ConfigDict(extra="allow")
    eventname: str = Field(min_length=1)


class MoodleCourseCompleted(BaseModel):
    model_config = ConfigDict(extra="allow")
    eventname: str
    relateduserid: Identifier
    courseid: Identifier
    objectid: Identifier | None = None
    # Epoch seconds; its plausibility is judged in parse: an implausible time is recorded.
    timecreated: int
    host: str | None = None


def unwrapped(data: dict[str, Any]) -> dict[str, Any]:
    """The event record, from local_webhooks' flat body or local_webhookengine's envelope."""
    inner = data.get("event")
    if isinstance(inner, dict) and "eventname" in data:
        return {**inner, "eventname": data["eventname"]}
    return data


def parse(data: Any, inst: MoodleSource) -> list[Parsed]:
    if not isinstance(data, dict):
        raise ValueError("a Moodle webhook body must be a JSON object")
    data = unwrapped(data)
    envelope = MoodleEnvelope.model_validate(data)
    if envelope.eventname != COURSE_COMPLETED:
        return [Ignored(reason=f"moodle event {envelope.eventname} is not a course completion")]
    done = MoodleCourseCompleted.model_validate(data)
    # The installation is the one whose route and secret took the call, never the body's
    # ``host`` (Moodle's wwwroot, not an instance name): a caller must not be able to file a
    # completion under another installation.
    instance = inst.instance
    refused = implausible(done.timecreated)
    event = CompletionEvent.model_validate(
        {
            "source": "moodle",
            "source_instance": instance,
            "event_id": f"moodle-{instance}-course_completed-{done.objectid}-{done.timecreated}",
            "person_id": done.relateduserid,
            "course_id": done.courseid,
            # A refused time is kept out of the event (the record says what came): the record is
            # failed and never delivered with it.
            "completed_at": done.timecreated if refused is None else datetime.now(UTC),
        }
    )
    # Moodle's event carries no grade; the worker fetches it (and maps ids if configured), and
    # Moodle's own completion time: for a refused one, once an operator retries it.
    return [Completion(event=event, needs=(NEEDS_GRADE,), refused=refused)]
