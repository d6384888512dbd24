"""What a (valid) xAPI statement means for Coachview, per installation: a completion, a learner
who did not pass, the voiding of an earlier statement, or nothing (with a reason).

- What counts: the installation's ``verbs`` (by default ``completed``, ``passed`` and cmi5's
  ``satisfied``); ``failed`` or ``result.success: false`` is a learner who did not pass
  (cmi5_spec.md §9.3.5, §9.5.2), never a pass; a cmi5 ``satisfied`` on a Block is not a
  course (§9.4).
- The grade: ``score.scaled``, else ``raw`` on ``min..max``, through the installation's
  ``grade_format`` (gradesync/grades.py); a ``raw`` without its range is no grade.
- Who: ``account.name`` (its ``homePage`` checked when configured), ``mbox`` or ``openid``; a
  Group is not a learner.
- What: the object id through the installation's course pattern, after a length cap.
- When: ``timestamp``; none (it is optional) is the arrival time, one without a zone is UTC,
  and the record says which.

Pure: no I/O. The pattern is the operator's and the object id the sender's: the caller runs
this off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import regex
from pydantic import ValidationError

from gradesync.completion_time import CompletedAtSource
from gradesync.event import CompletionEvent, describe
from gradesync.grades import as_decimal, render, render_scaled
from gradesync.sources import XAPI_FAILED, XapiSource
from gradesync.xapi_spec import VOIDED, timestamp

# Longer object ids are no course id anyone typed into Coachview; the cap keeps the operator's
# pattern from ever scanning a megabyte.
MAX_OBJECT_ID = 2048
COURSE_PATTERN_TIMEOUT_S = 0.5
CMI5_BLOCK = "https://w3id.org/xapi/cmi5/activitytype/block"
# Why a statement was answered 200 and left alone: a closed set (a metrics label).
Reason = Literal[
    "verb_not_counted",
    "group_actor",
    "no_learner_id",
    "other_homepage",
    "object_not_activity",
    "object_id_too_long",
    "not_a_course",
    "course_pattern_too_slow",
    "cmi5_block",
    "unusable_value",
]


@dataclass(frozen=True)
class Counted:
    event: CompletionEvent
    verb: str
    registration: str | None
    completed_at_source: CompletedAtSource


@dataclass(frozen=True)
class NotPassed:
    event: CompletionEvent
    completed_at_source: CompletedAtSource


@dataclass(frozen=True)
class Voiding:
    target: str  # the voided statement's id (lower case)


@dataclass(frozen=True)
class Skipped:
    reason: Reason
    detail: str


Reading = Counted | NotPassed | Voiding | Skipped


def grade(score: Any, inst: XapiSource) -> str | None:
    """``scaled`` first (xAPI's own normalisation), else ``raw`` on its ``min..max``."""
    if inst.grade_policy == "completion_only" or not isinstance(score, dict):
        return None
    scaled = as_decimal(score.get("scaled"))
    if scaled is not None:
        return render_scaled(scaled, inst.grade_format)
    raw, low, high = (as_decimal(score.get(k)) for k in ("raw", "min", "max"))
    if raw is None or low is None or high is None:
        return None  # a raw score alone says nothing about its scale
    return render(raw, low, high, inst.grade_format)


def learner(actor: dict[str, Any], inst: XapiSource) -> str | Skipped:
    if actor.get("objectType") == "Group":
        return Skipped("group_actor", "a Group is not a learner")
    if inst.actor_id == "account":
        account = actor.get("account")
        if not isinstance(account, dict):
            return Skipped("no_learner_id", "the actor has no account")
        home = inst.account_homepage
        if home is not None and str(account["homePage"]).rstrip("/") != home.rstrip("/"):
            return Skipped("other_homepage", "the account is of another homePage")
        return str(account["name"])
    value = actor.get(inst.actor_id)
    if not isinstance(value, str):
        return Skipped("no_learner_id", f"the actor has no {inst.actor_id}")
    return value.removeprefix("mailto:") if inst.actor_id == "mbox" else value


def course(target: dict[str, Any], inst: XapiSource) -> str | Skipped:
    if target.get("objectType", "Activity") != "Activity":
        return Skipped("object_not_activity", "the object is not an Activity")
    object_id = str(target["id"])
    if len(object_id) > MAX_OBJECT_ID:
        return Skipped("object_id_too_long", f"object.id is over {MAX_OBJECT_ID} characters")
    try:
        # ``regex``, not ``re``: it can stop a match that runs away (an operator's pattern may
        # backtrack quadratically), and on a ``str`` it releases the GIL, so other threads run
        # meanwhile.
        match = regex.search(inst.course_pattern, object_id, timeout=COURSE_PATTERN_TIMEOUT_S)
    except TimeoutError:
        return Skipped(
            "course_pattern_too_slow",
            f"the course pattern took over {COURSE_PATTERN_TIMEOUT_S:g} s on object.id",
        )
    if match is None or not match.group("course"):
        return Skipped("not_a_course", "object.id does not match the course pattern")
    return match.group("course")


def instant(statement: dict[str, Any], arrival: datetime) -> tuple[datetime, CompletedAtSource]:
    at = timestamp(statement.get("timestamp"), "timestamp")
    if at is None:
        return arrival, "arrival"
    if at.utcoffset() is None:  # fromisoformat: no zone written
        return at.replace(tzinfo=UTC), "utc_assumed"
    return at, "event"


def read(statement: dict[str, Any], sid: str, inst: XapiSource, arrival: datetime) -> Reading:
    verb = str(statement["verb"]["id"])
    if verb == VOIDED:
        return Voiding(target=str(statement["object"]["id"]).lower())
    result = statement.get("result") if isinstance(statement.get("result"), dict) else {}
    assert isinstance(result, dict)
    failed = verb == XAPI_FAILED or result.get("success") is False
    if verb not in inst.verbs and verb != XAPI_FAILED:
        return Skipped("verb_not_counted", "the verb is not one this installation counts")
    person = learner(statement["actor"], inst)
    if isinstance(person, Skipped):
        return person
    target = statement["object"]
    definition = target.get("definition")
    if isinstance(definition, dict) and definition.get("type") == CMI5_BLOCK:
        return Skipped("cmi5_block", "a cmi5 Block is not a course")
    course_id = course(target, inst)
    if isinstance(course_id, Skipped):
        return course_id
    at, source = instant(statement, arrival)
    context = statement.get("context")
    registration = context.get("registration") if isinstance(context, dict) else None
    try:
        event = CompletionEvent.model_validate(
            {
                "source": "xapi",
                "source_instance": inst.instance,
                "event_id": f"xapi-{sid}",
                "person_id": person,
                "course_id": course_id,
                "grade": grade(result.get("score"), inst),
                "completed_at": at,
            }
        )
    except ValidationError as exc:
        return Skipped("unusable_value", describe(exc))
    if failed:
        return NotPassed(event=event, completed_at_source=source)
    reg = str(registration).lower() if registration is not None else None
    return Counted(event=event, verb=verb, registration=reg, completed_at_source=source)
