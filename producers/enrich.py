"""What the worker fetches from the LMS before Coachview is written: the grade (no LMS puts it
in its completion event) and, where Coachview knows learners or courses by another LMS field,
that field. Runs in the worker, never in the ingress: a slow LMS must not slow a webhook."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel

from gradesync.errors import Permanent, Unresolved
from gradesync.ledger import Record
from gradesync.settings import Settings
from producers.anewspring_api import ANewSpringAPI
from producers.moodle_ws import MoodleWS, grade_text
from producers.native import NEEDS_GRADE


class Enrichment(BaseModel):
    grade: str | None = None
    match_person_id: str | None = None
    match_course_id: str | None = None
    note: str | None = None


@lru_cache(maxsize=4)
def _moodle(url: str, token: str) -> MoodleWS:
    return MoodleWS(url, token)


@lru_cache(maxsize=4)
def _anewspring(url: str, key: str) -> ANewSpringAPI:
    return ANewSpringAPI(url, key)


def from_moodle(record: Record, s: Settings) -> Enrichment:
    assert s.moodle_url and s.moodle_token
    ws = _moodle(s.moodle_url, s.moodle_token.get_secret_value())
    user, course = record.event.person_id, record.event.course_id
    if not ws.completed(course, user):
        raise Permanent(
            "Moodle does not report this course as completed for this learner",
            code="not_completed_in_lms",
        )
    item = ws.course_total(course, user)
    out = Enrichment(grade=grade_text(item, s.moodle_grade_format) if item else None)
    if out.grade is None:
        out.note = "no course total in Moodle's gradebook"
    if s.moodle_person_field != "id":
        out.match_person_id = ws.user_field(user, s.moodle_person_field)
        if out.match_person_id is None:
            raise Unresolved("unknown_person", f"the Moodle user has no {s.moodle_person_field}")
    if s.moodle_course_field != "id":
        out.match_course_id = ws.course_field(course, s.moodle_course_field)
        if out.match_course_id is None:
            raise Unresolved("unknown_course", f"the Moodle course has no {s.moodle_course_field}")
    return out


def enrich(record: Record, s: Settings) -> Enrichment | None:
    """``None`` when nothing is needed from the LMS."""
    source = record.event.source
    if source == "moodle" and NEEDS_GRADE in record.needs:
        if s.moodle_url and s.moodle_token:
            return from_moodle(record, s)
        return Enrichment(note="MOODLE_URL/MOODLE_TOKEN not set: delivered without a grade")
    if source == "anewspring" and NEEDS_GRADE in record.needs:
        if s.anewspring_url and s.anewspring_api_key:
            api = _anewspring(s.anewspring_url, s.anewspring_api_key.get_secret_value())
            return Enrichment(grade=api.grade(record.event.person_id, record.event.course_id))
        return Enrichment(note="ANEWSPRING_URL/_API_KEY not set: delivered without a grade")
    return None
