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
from gradesync.lms.moodle import MoodleError, MoodleWS, grade_text, why_not_a_grade
from gradesync.parsed import NEEDS_GRADE, NEEDS_MOODLE_PERSON
from gradesync.record import Record
from gradesync.settings import Settings, lms_api_gap
from gradesync.sources import (
    ANewSpringSource,
    AnyInstallation,
    Installation,
    InstallationUnknown,
    MoodleSource,
    XapiSource,
)


class Enrichment(BaseModel):
    grade: str | None = None
    match_person_id: str | None = None
    match_course_id: str | None = None
    note: str | None = None
    instant: CompletionInstant | None = None


@lru_cache(maxsize=32)
def _moodle(url: str, token: str) -> MoodleWS:
    return MoodleWS(url, token)


@lru_cache(maxsize=32)
def _anewspring(url: str, key: str) -> ANewSpringAPI:
    return ANewSpringAPI(url, key)


def _not_configured(s: Settings, inst: Installation) -> Permanent | None:
    gap = lms_api_gap(s, inst)
    return None if gap is None else Permanent(gap, code="lms_api_not_configured")


# Moodle's answers when it will not show its view of a completion the webhook already proved
# (completion/classes/external.php): the learner was unenrolled since, the course lost its
# criteria, or the token may not see the report. None of them unproves the completion.
WEBHOOK_SUFFICES = frozenset(
    {"usernotenroled", "nocriteriaset", "err_nocriteria", "cannotviewreport"}
)


def from_moodle(record: Record, inst: MoodleSource, s: Settings) -> Enrichment:
    if (missing := _not_configured(s, inst)) is not None:
        raise missing
    if inst.api is None:
        return Enrichment(
            note=f"{inst.name}: grade_policy completion_only, no Moodle web service: no grade, "
            "completion time from the event"
        )
    ws = _moodle(inst.api.url, inst.api.secret())
    user, course = record.event.person_id, record.event.course_id
    out = _moodle_instant(ws, record)
    if inst.grade_policy == "fetch":
        out.grade = _moodle_grade(ws, inst, course, user)
    else:
        out.note = _joined(out.note, f"{inst.name}: grade_policy completion_only: no grade fetched")
    if inst.person_key != "id":
        out.match_person_id = ws.user_field(user, inst.person_key)
        if out.match_person_id is None:
            raise Unresolved("unknown_person", f"the Moodle user has no {inst.person_key}")
    if inst.course_field != "id":
        out.match_course_id = ws.course_field(course, inst.course_field)
        if out.match_course_id is None:
            raise Unresolved("unknown_course", f"the Moodle course has no {inst.course_field}")
    return out


def _moodle_instant(ws: MoodleWS, record: Record) -> Enrichment:
    """Moodle's completion instant; the event's own when Moodle will not show its view (the
    record says so), since the webhook alone proves the completion."""
    event_time = record.event.completed_at
    try:
        status = ws.completion_status(record.event.course_id, record.event.person_id)
    except MoodleError as exc:
        code = exc.code.removeprefix("moodle_")
        if code not in WEBHOOK_SUFFICES:
            raise
        return Enrichment(
            instant=CompletionInstant(at=event_time, source="event"),
            note=f"moodle answered {code}: completion time from the event (fallback)",
        )
    if not status.completed:
        raise Permanent(
            "Moodle does not report this course as completed for this learner",
            code="not_completed_in_lms",
        )
    return Enrichment(instant=moodle_completion_instant(status, event_time))


def _moodle_grade(ws: MoodleWS, inst: MoodleSource, course: str, user: str) -> str:
    """The course total under the installation's grade format; a total that is not a grade yet
    (none, regrading, hidden) or a report Moodle will not show is ``grade_unavailable``."""
    try:
        item = ws.course_total(course, user)
    except MoodleError as exc:
        if exc.code.removeprefix("moodle_") not in WEBHOOK_SUFFICES:
            raise
        raise Unresolved(
            "grade_unavailable", f"Moodle's grade report is not available: {exc.code}"
        ) from None
    if item is None:
        raise Unresolved("grade_unavailable", "Moodle's gradebook has no course total yet")
    grade = grade_text(item, inst.grade_format, inst.decimal_separator)
    if grade is None:
        raise Unresolved("grade_unavailable", f"Moodle: {why_not_a_grade(item)}")
    return grade


def _joined(first: str | None, second: str) -> str:
    return second if first is None else f"{first}; {second}"


def from_anewspring(record: Record, inst: ANewSpringSource, s: Settings) -> Enrichment:
    if inst.grade_policy != "fetch":
        return Enrichment(
            note=f"{inst.name}: grade_policy {inst.grade_policy}: the event has no grade"
        )
    if (missing := _not_configured(s, inst)) is not None:
        raise missing
    assert inst.api is not None  # grade_policy fetch without one is the gap just raised
    api = _anewspring(inst.api.url, inst.api.secret())
    grade = api.grade(
        record.event.person_id, record.event.course_id, inst.grade_format, inst.decimal_separator
    )
    if grade is None:
        raise Unresolved("grade_unavailable", "aNewSpring's result has no grade yet")
    return Enrichment(grade=grade)


def from_xapi_via_moodle(record: Record, inst: XapiSource, s: Settings) -> Enrichment:
    """An xAPI account names the learner by the Moodle user id (moodle-logstore_xapi's default
    actor): the Moodle installation ``inst.moodle`` maps it to its ``person_field``, as for its
    own completions. The sources file checked that installation exists and has an API."""
    assert inst.moodle is not None  # only then is the need recorded
    moodle = s.sources.typed(MoodleSource, inst.moodle)
    if moodle.person_key == "id":
        return Enrichment(note=f"{inst.name}: learner by {moodle.name}'s user id, as sent")
    assert moodle.api is not None  # the sources refuse an xAPI moodle without one
    ws = _moodle(moodle.api.url, moodle.api.secret())
    person = ws.user_field(record.event.person_id, moodle.person_key)
    if person is None:
        raise Unresolved("unknown_person", f"the Moodle user has no {moodle.person_key}")
    return Enrichment(
        match_person_id=person,
        note=f"{inst.name}: learner mapped by {moodle.name}'s {moodle.person_key}",
    )


def installation(record: Record, s: Settings) -> AnyInstallation:
    """The installation a record belongs to. The worker holds a record of an installation it
    does not know before it gets here (gradesync/held.py); for any other caller one no longer
    in the sources is ``failed`` (``unknown_installation``): nothing can be fetched for it."""
    try:
        return s.sources.find(record.event.source, record.event.source_instance)
    except InstallationUnknown as exc:
        raise Permanent(str(exc), code="unknown_installation") from None


def enrich(record: Record, s: Settings) -> Enrichment | None:
    """``None`` when nothing is needed from the LMS. The record's own installation's API,
    credential, grade policy and id fields are the ones used."""
    if NEEDS_GRADE not in record.needs and NEEDS_MOODLE_PERSON not in record.needs:
        return None
    inst = installation(record, s)
    if isinstance(inst, XapiSource) and inst.moodle is not None:
        return checked(from_xapi_via_moodle(record, inst, s))
    if isinstance(inst, MoodleSource):
        return checked(from_moodle(record, inst, s))
    if isinstance(inst, ANewSpringSource):
        return checked(from_anewspring(record, inst, s))
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
