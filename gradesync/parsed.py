"""What a parser makes of one LMS payload: a completion (with what the worker must still fetch
from the LMS), or a reason to ignore it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from gradesync.event import CompletionEvent

# The worker must still fetch the grade from the LMS before Coachview can be written.
NEEDS_GRADE = "grade"
# The worker must map an xAPI account (a Moodle user id) to the learner's id through the Moodle
# installation the xAPI installation names.
NEEDS_MOODLE_PERSON = "moodle_person"


class Completion(BaseModel):
    model_config = ConfigDict(frozen=True)
    event: CompletionEvent
    needs: tuple[str, ...] = ()
    # An authenticated sender's completion whose field failed a plausibility rule: recorded
    # ``failed`` with this reason, for a person to look at, never sent. A 4xx would lose it for
    # good (Moodle's webhook plugins never resend).
    refused: str | None = None


class Ignored(BaseModel):
    """Not a completion (another event, an unfinished status): accepted, never enqueued."""

    model_config = ConfigDict(frozen=True)
    reason: str


class Rejected(BaseModel):
    """One item of a multi-item payload (a row of ILIAS's LPData) that is not valid: reported
    with its reason, while the payload's other items still go in."""

    model_config = ConfigDict(frozen=True)
    reason: str


Parsed = Completion | Ignored | Rejected
