"""xAPI on the signed route (``/events/xapi…``, Standard Webhooks): one statement in, read as
the Statement endpoint reads it (gradesync/xapi_spec.py, gradesync/xapi_read.py).

Completions go in; a learner who did not pass and a voiding are only understood by the
Statement endpoint (producers/xapi_statements.py) and are ignored here, with that reason: a
fail never ticks pass on either route. Sample: tests/fixtures/xapi-completed.json.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gradesync import xapi_read, xapi_spec
from gradesync.parsed import NEEDS_MOODLE_PERSON, Completion, Ignored, Parsed
from gradesync.sources import XapiSource


def needs(inst: XapiSource) -> tuple[str, ...]:
    """What the worker must fetch first: the learner's id from the named Moodle installation."""
    return (NEEDS_MOODLE_PERSON,) if inst.moodle is not None else ()


def parse(data: Any, inst: XapiSource) -> list[Parsed]:
    statement = xapi_spec.check(data, "statement")  # an Invalid is a ValueError naming the field
    sid = xapi_spec.statement_id(statement)
    reading = xapi_read.read(statement, sid, inst, datetime.now(UTC))
    if isinstance(reading, xapi_read.Counted):
        return [Completion(event=reading.event, needs=needs(inst))]
    if isinstance(reading, xapi_read.Skipped):
        return [Ignored(reason=f"{reading.reason}: {reading.detail}")]
    what = "a voiding" if isinstance(reading, xapi_read.Voiding) else "a learner who did not pass"
    return [Ignored(reason=f"{what}: send it to the Statement endpoint (/xapi/…/statements)")]
