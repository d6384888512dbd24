"""What the worker fetches from the LMS before Coachview is written: the grade (no LMS puts it
in its completion event), the LMS's own completion instant, and, where Coachview knows learners
or courses by another LMS field, that field. Runs in the worker, never in the ingress: a slow LMS
must not slow a webhook.

A grade the event lacks is never silently dropped: under a ``fetch`` grade policy, no LMS API
is a ``failed`` record (``lms_api_not_configured``) and a grade the LMS has not computed yet an
``unresolved`` one (``grade_unavailable``, retried daily); only ``completion_only`` (or
aNewSpring's ``event``) delivers a completion without a result, as the operator said."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel

from gradesync.completion_time import CompletionInstant, moodle_completion_instant
from gradesync.errors import Permanent, Unresolved
from gradesync.event import check_grade, check_identifier
from gradesync.lms.anewspring import ANewSpringAPI
from gradesync.lms.moodle import MoodleWS, grade_text
from gradesync.parsed import NEEDS_GRADE
from gradesync.record import Record
from gradesync.settings import Settings, lms_api_gap


class Enrichment(BaseModel):
    grade: str | None = None
    match_person_id: str | None = None
    match_course_id: str | None = None
    note: str | None = None
    instant: CompletionInstant | None = None


@lru_cache(maxsize=4)
def _moodle(url: str, token: str) -> MoodleWS:
    return MoodleWS(url, token)


@lru_cache(maxsize=4)
def _anewspring(url: str, key: str) -> ANewSpringAPI:
    return ANewSpringAPI(url, key)


def _not_configured(s: Settings, source: str) -> Permanent | None:
    gap = lms_api_gap(s, source)
    return None if gap is None else Permanent(gap, code="lms_api_not_configured")


def from_moodle(record: Record, s: Settings) -> Enrichment:
    if (missing := _not_configured(s, "moodle")) is not None:
        raise missing
    if not (s.moodle_url and s.moodle_token):
        return Enrichment(
            note="MOODLE_GRADE_POLICY=completion_only, no Moodle web service: no grade, "
            "completion time from the event"
        )
    ws = _moodle(s.moodle_url, s.moodle_token.get_secret_value())
    user, course = record.event.person_id, record.event.course_id
    status = ws.completion_status(course, user)
    if not status.completed:
        raise Permanent(
            "Moodle does not report this course as completed for this learner",
            code="not_completed_in_lms",
        )
    out = Enrichment(instant=moodle_completion_instant(status, record.event.completed_at))
    if s.moodle_grade_policy == "fetch":
        item = ws.course_total(course, user)
        out.grade = grade_text(item, s.moodle_grade_format) if item else None
        if out.grade is None:
            raise Unresolved("grade_unavailable", "Moodle's gradebook has no course total yet")
    else:
        out.note = "MOODLE_GRADE_POLICY=completion_only: no grade fetched"
    if s.moodle_person_field != "id":
        out.match_person_id = ws.user_field(user, s.moodle_person_field)
        if out.match_person_id is None:
            raise Unresolved("unknown_person", f"the Moodle user has no {s.moodle_person_field}")
    if s.moodle_course_field != "id":
        out.match_course_id = ws.course_field(course, s.moodle_course_field)
        if out.match_course_id is None:
            raise Unresolved("unknown_course", f"the Moodle course has no {s.moodle_course_field}")
    return out


def from_anewspring(record: Record, s: Settings) -> Enrichment:
    if s.anewspring_grade_policy != "fetch":
        return Enrichment(
            note=f"ANEWSPRING_GRADE_POLICY={s.anewspring_grade_policy}: the event has no grade"
        )
    if not (s.anewspring_url and s.anewspring_api_key):
        raise _not_configured(s, "anewspring") or Permanent(
            "ANEWSPRING_URL and ANEWSPRING_API_KEY are needed", code="lms_api_not_configured"
        )
    api = _anewspring(s.anewspring_url, s.anewspring_api_key.get_secret_value())
    grade = api.grade(record.event.person_id, record.event.course_id)
    if grade is None:
        raise Unresolved("grade_unavailable", "aNewSpring's result has no grade yet")
    return Enrichment(grade=grade)


def enrich(record: Record, s: Settings) -> Enrichment | None:
    """``None`` when nothing is needed from the LMS."""
    if NEEDS_GRADE not in record.needs:
        return None
    if record.event.source == "moodle":
        return checked(from_moodle(record, s))
    if record.event.source == "anewspring":
        return checked(from_anewspring(record, s))
    return None


def checked(found: Enrichment) -> Enrichment:
    """What an LMS API said, held to the rules an event's fields are held to: the ledger must
    never store what it cannot load, and a grade that is not a grade must never reach Coachview,
    where the first result wins for good."""
    try:
        grade = check_grade(found.grade)
    except ValueError as exc:
        raise Permanent(f"the LMS's grade {exc}", code="invalid_grade") from None
    ids: dict[str, str | None] = {}
    for name in ("match_person_id", "match_course_id"):
        value = getattr(found, name)
        try:
            ids[name] = None if value is None else check_identifier(value)
        except ValueError as exc:
            raise Permanent(f"the LMS's {name} {exc}", code="invalid_lms_id") from None
    return found.model_copy(update={"grade": grade, **ids})
