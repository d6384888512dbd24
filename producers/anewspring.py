"""aNewSpring: its webhook body in, a canonical completion out.

Public (aNewSpring support): webhooks are set up by aNewSpring support, send JSON with
``event`` and ``created``, are signed in ``X-WebHook-Signature`` = Base64(HMAC-SHA1(body,
secret)), as JSON or XML (``text/xml``, the event name in ``type``: read by producers/bodies.py)
and are retried 10 more times (10 s … 16 h) unless answered 200/201/202/204 within
10 s. NOT public: the completion event's name and body fields. Every such name lives in
:data:`gradesync.lms.anewspring.FIELDS` and must be confirmed with aNewSpring.
Sample: tests/fixtures/anewspring-webhook.json.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gradesync.event import CompletionEvent
from gradesync.lms.anewspring import FIELDS, pick
from gradesync.parsed import NEEDS_GRADE, Completion, Ignored, Parsed
from gradesync.sources import ANewSpringSource


class Envelope(BaseModel):
    model_config = ConfigDict(extra="allow")
    event: str = Field(min_length=1)
    created: str | int | None = None


def parse(data: Any, inst: ANewSpringSource) -> list[Parsed]:
    if not isinstance(data, dict):
        raise ValueError("an aNewSpring webhook body must be a JSON object")
    if "event" not in data and "type" in data:  # the XML form names the event ``type``
        data = {**data, "event": data["type"]}
    envelope = Envelope.model_validate(data)
    if envelope.event not in inst.completion_events:
        return [Ignored(reason=f"aNewSpring event {envelope.event} is not a course completion")]
    raw_id = pick(data, FIELDS.event_id)
    grade = pick(data, FIELDS.grade)
    event = CompletionEvent.model_validate(
        {
            "source": "anewspring",
            "source_instance": inst.instance,
            "event_id": f"anewspring-{raw_id}" if raw_id is not None else None,
            "person_id": pick(data, FIELDS.person_id),
            "course_id": pick(data, FIELDS.course_id),
            "grade": grade,
            "completed_at": pick(data, FIELDS.completed_at),
        }
    )
    return [Completion(event=event, needs=() if grade is not None else (NEEDS_GRADE,))]
