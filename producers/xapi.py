"""xAPI: a "completed" statement in, a canonical completion out — for any LMS that speaks it.

Source: xAPI 1.0.3 (adlnet/xAPI-Spec, xAPI-Data.md): ``actor.account.{homePage,name}``,
``verb.id``, ``object.id``, ``result.score.{scaled,raw,min,max}``, ``timestamp``, ``id``.
Sample: tests/fixtures/xapi-completed.json.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import regex
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from gradesync.event import CompletionEvent, plausible_instant
from gradesync.parsed import Completion, Ignored, Parsed
from gradesync.sources import XapiSource

COMPLETED = "http://adlnet.gov/expapi/verbs/completed"


class Account(BaseModel):
    model_config = ConfigDict(extra="allow")
    homePage: str = Field(min_length=1)
    name: str = Field(min_length=1)


class Actor(BaseModel):
    model_config = ConfigDict(extra="allow")
    account: Account


class Verb(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str


# An activity IRI is a short address; the course pattern is matched only within this length.
# Python's ``re`` promises no linear time: the default pattern backtracks quadratically (60,000
# characters held the event loop for 38 s), and operators write patterns of their own.
MAX_OBJECT_ID_LENGTH = 512
COURSE_PATTERN_TIMEOUT_S = 0.5


class Activity(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1, max_length=MAX_OBJECT_ID_LENGTH)


class Score(BaseModel):
    model_config = ConfigDict(extra="allow")
    scaled: float | None = Field(None, ge=-1, le=1)
    raw: float | None = None
    min: float | None = None
    max: float | None = None


class Result(BaseModel):
    model_config = ConfigDict(extra="allow")
    score: Score | None = None
    completion: bool | None = None


class Statement(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    actor: Actor
    verb: Verb
    object: Activity
    result: Result | None = None
    timestamp: Annotated[AwareDatetime, AfterValidator(plausible_instant)]


def grade(score: Score | None) -> str | None:
    """Raw on a 10-point scale as is; other raw/max and scaled as a 1-decimal grade out of 10."""
    if score is None:
        return None
    if score.raw is not None:
        if score.max in (None, 10):
            return format(Decimal(str(score.raw)).normalize(), "f")
        if score.max:
            return f"{score.raw / score.max * 10:.1f}"
    if score.scaled is not None:
        return f"{max(score.scaled, 0) * 10:.1f}"
    return None


def course_id(object_id: str, pattern: str) -> str:
    """The course id in ``object.id``. ``regex`` rather than ``re``: it can stop a match that
    takes too long, and lets other threads run meanwhile (``concurrent``: the GIL released)."""
    try:
        match = regex.search(pattern, object_id, timeout=COURSE_PATTERN_TIMEOUT_S, concurrent=True)
    except TimeoutError:
        raise ValueError(
            f"object.id: the course pattern {pattern!r} took more than "
            f"{COURSE_PATTERN_TIMEOUT_S:g} s on it"
        ) from None
    if match is None:
        raise ValueError(f"object.id does not match the course pattern {pattern!r}")
    return match.group("course") if "course" in match.re.groupindex else match.group(0)


def parse(data: Any, inst: XapiSource) -> list[Parsed]:
    if not isinstance(data, dict):
        raise ValueError("an xAPI statement must be a JSON object")
    statement = Statement.model_validate(data)
    if statement.verb.id != COMPLETED:
        return [Ignored(reason=f"xAPI verb {statement.verb.id} is not {COMPLETED}")]
    event = CompletionEvent.model_validate(
        {
            "source": "xapi",
            # The route's installation, not the statement's: the caller does not choose it.
            "source_instance": inst.instance,
            "event_id": f"xapi-{statement.id}" if statement.id else None,
            "person_id": statement.actor.account.name,
            "course_id": course_id(statement.object.id, inst.course_pattern),
            "grade": grade(statement.result.score if statement.result else None),
            "completed_at": statement.timestamp,
        }
    )
    return [Completion(event=event)]
