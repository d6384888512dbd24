"""aNewSpring: its webhook body in, a canonical completion out.

Public (aNewSpring support): webhooks are set up by aNewSpring support, send JSON with
``event`` and ``created``, are signed in ``X-WebHook-Signature`` = Base64(HMAC-SHA1(body,
secret)) and are retried 10 more times (10 s … 16 h) unless answered 200/201/202/204 within
10 s. NOT public: the completion event's name and body fields. Every such name lives in
:data:`MAPPING` and must be confirmed with aNewSpring; the defaults are the names aNewSpring's
REST API uses (``completed``, ``completeDate``, ``grade``, ``passed``; users and courses by
external ``userID``/``courseID``). Sample: tests/fixtures/anewspring-webhook.json.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gradesync.event import CompletionEvent
from gradesync.settings import get_settings
from producers.native import NEEDS_GRADE, Completion, Ignored, Parsed


class Mapping(BaseModel):
    """Where each canonical field is found in an aNewSpring webhook body (dotted paths)."""

    model_config = ConfigDict(frozen=True)
    event_name: str = "event"
    person_id: tuple[str, ...] = ("userID", "data.userID", "user.userID")
    course_id: tuple[str, ...] = ("courseID", "data.courseID", "course.courseID")
    grade: tuple[str, ...] = ("grade", "data.grade", "result.grade")
    completed_at: tuple[str, ...] = ("completeDate", "data.completeDate", "created")
    event_id: tuple[str, ...] = ("id", "eventID", "data.id")


MAPPING = Mapping()
# The REST API's result resource for one learner in one course (enrichment); a guess.
RESULT_PATH = "/api/v2/users/{user}/courses/{course}/result"


class Envelope(BaseModel):
    model_config = ConfigDict(extra="allow")
    event: str = Field(min_length=1)
    created: str | int | None = None


def pick(data: dict[str, Any], paths: tuple[str, ...]) -> Any:
    for path in paths:
        node: Any = data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                node = None
                break
            node = node[part]
        if node is not None:
            return node
    return None


def parse(data: Any) -> list[Parsed]:
    if not isinstance(data, dict):
        raise ValueError("an aNewSpring webhook body must be a JSON object")
    envelope = Envelope.model_validate(data)
    completion_events = get_settings().anewspring_completion_event_names
    if envelope.event not in completion_events:
        return [Ignored(reason=f"aNewSpring event {envelope.event} is not a course completion")]
    raw_id = pick(data, MAPPING.event_id)
    grade = pick(data, MAPPING.grade)
    event = CompletionEvent.model_validate(
        {
            "source": "anewspring",
            "source_instance": get_settings().anewspring_instance,
            "event_id": f"anewspring-{raw_id}" if raw_id is not None else None,
            "person_id": pick(data, MAPPING.person_id),
            "course_id": pick(data, MAPPING.course_id),
            "grade": grade,
            "completed_at": pick(data, MAPPING.completed_at),
        }
    )
    return [Completion(event=event, needs=() if grade is not None else (NEEDS_GRADE,))]
