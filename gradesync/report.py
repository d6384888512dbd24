"""`gradesync report`: what an administrator must fix in Coachview, grouped, from the ledger.

Unresolved, failed and given-up records, and queued ones waiting on their installation
(:mod:`gradesync.held`), are grouped by their last error: LMS person ids with no
Coachview person, LMS course ids on no e-learning component, (person, course) pairs not
enrolled, and any other code as its own group; records this version cannot read are a group
too. Shadowed records (COACHVIEW_DELIVERY=shadow) that a real delivery could not have placed
join the same groups — what to fix before switching delivery on; those it could are counted.
The person and course ids are personal data: shown to the operator, never logged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from gradesync import held
from gradesync.ledger import Ledger
from gradesync.record import STATES, Record, Unreadable

REPORTED_STATES = ("unresolved", "failed", "given_up", "shadowed")
UNREADABLE = "unreadable"
# Groups in the order an administrator works through them; other codes follow by size.
FIXES: dict[str, str] = {
    "unknown_person": "store the LMS person id on the Coachview person (externId, see "
    "COACHVIEW_PERSON_MATCH)",
    "unknown_course": "put the LMS course id on the training's e-learning component "
    "(elearningCode)",
    "not_enrolled": "enrol the person on a training that has this e-learning component",
    # The result link's 404: Coachview does not say which of the three; finding out spends
    # REST requests, so only on request.
    "not_placed": "Coachview could not place it (unknown person, unknown course or not "
    "enrolled): `gradesync diagnose KEY` tells which",
    held.UNKNOWN: "the workers do not know this installation: restart the workers and beat "
    "with the sources file that names it (they release the waiting records), or "
    "`gradesync give-up KEY` if it is gone for good",
    held.DISABLED: "the installation is disabled (enabled: false): enable it and restart the "
    "workers (they release the waiting records), or `gradesync give-up KEY`",
}
OTHER_FIX = "see `gradesync show KEY` for the message; `gradesync retry KEY` after the fix"
UNREADABLE_FIX = "written by another version or damaged: `gradesync purge --unreadable`"


class Row(BaseModel):
    """One record in a group: a spreadsheet line."""

    group: str
    state: str
    record_id: str
    source: str
    instance: str
    person_id: str
    course_id: str
    # What Coachview is searched for, when the LMS told us a different id to match on.
    coachview_person_id: str
    coachview_course_id: str
    completed_on: date | None
    daily_retries: int
    days_left: int
    # The last error's message, or why the record cannot be read.
    note: str


class Group(BaseModel):
    reason: str
    what_to_fix: str
    count: int
    given_up: int
    # From shadow runs: found before delivery started (their 30 days have not begun).
    shadowed: int
    # How many distinct persons, courses or pairs: what the administrator actually fixes.
    distinct: int
    oldest_completion: date | None
    # The most urgent record's: at 0 the next daily pass gives it up (given-up records: 0;
    # shadowed ones: all of them, the window starts when delivery starts).
    days_left: int
    # Records per installation (``kind/instance``): whose LMS the fix concerns.
    installations: dict[str, int]
    rows: list[Row]


class Report(BaseModel):
    since: datetime | None
    counts: dict[str, int]
    groups: list[Group]
    # Records per installation (``kind/instance``) and state.
    installations: dict[str, dict[str, int]] = {}
    # Shadowed records whose shadow run found nothing to fix: their writes are in history
    # (`gradesync show KEY`), ready for `gradesync retry --state shadowed`.
    would_deliver: int = 0


def days_left(rec: Record, max_retries: int) -> int:
    if rec.state == "shadowed":
        return max_retries
    # A queued record in the report waits on its installation: no daily retry is spent
    # meanwhile, so its days are still ahead (0 read as "about to be given up").
    if rec.state not in ("unresolved", "queued"):
        return 0
    return max(0, max_retries - rec.daily_retries)


def _row(rec: Record | Unreadable, max_retries: int, tz: ZoneInfo) -> Row:
    if isinstance(rec, Unreadable):
        return Row(
            group=UNREADABLE,
            state=UNREADABLE,
            record_id=rec.id,
            source="",
            instance="",
            person_id="",
            course_id="",
            coachview_person_id="",
            coachview_course_id="",
            completed_on=None,
            daily_retries=0,
            days_left=0,
            note="; ".join(rec.problems),
        )
    event = rec.event
    return Row(
        group=rec.last_error.code if rec.last_error else "unknown",
        state=rec.state,
        record_id=rec.id,
        source=event.source,
        instance=event.source_instance,
        person_id=event.person_id,
        course_id=event.course_id,
        coachview_person_id=rec.coachview_person_id,
        coachview_course_id=rec.coachview_course_id,
        completed_on=event.approval_date(tz),
        daily_retries=rec.daily_retries,
        days_left=days_left(rec, max_retries),
        note=rec.last_error.message if rec.last_error else "",
    )


def _subject(row: Row) -> tuple[str, ...]:
    """What the administrator fixes for this row: a person, a course, or the pair."""
    if row.group == "unknown_person":
        return (row.coachview_person_id,)
    if row.group == "unknown_course":
        return (row.coachview_course_id,)
    return (row.coachview_person_id, row.coachview_course_id, row.record_id)


def group_records(
    records: Iterable[Record | Unreadable], max_retries: int, tz: ZoneInfo
) -> list[Group]:
    """Pure: the records grouped by what to fix, each group's rows oldest completion first."""
    by_reason: dict[str, list[Row]] = {}
    for rec in records:
        row = _row(rec, max_retries, tz)
        by_reason.setdefault(row.group, []).append(row)
    groups = []
    for reason, rows in by_reason.items():
        rows.sort(key=lambda r: (r.completed_on or date.max, r.record_id))
        dates = [r.completed_on for r in rows if r.completed_on is not None]
        groups.append(
            Group(
                reason=reason,
                what_to_fix=_fix(reason),
                count=len(rows),
                given_up=sum(r.state == "given_up" for r in rows),
                shadowed=sum(r.state == "shadowed" for r in rows),
                distinct=len({_subject(r) for r in rows}),
                oldest_completion=min(dates) if dates else None,
                days_left=min(r.days_left for r in rows),
                installations=_tally(_installation(r) for r in rows),
                rows=rows,
            )
        )
    known = list(FIXES)
    groups.sort(
        key=lambda g: (
            known.index(g.reason) if g.reason in known else len(known),
            g.reason == UNREADABLE,
            -g.count,
            g.reason,
        )
    )
    return groups


def _installation(row: Row) -> str:
    return f"{row.source}/{row.instance}" if row.source else UNREADABLE


def _tally(names: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in names:
        out[name] = out.get(name, 0) + 1
    return dict(sorted(out.items()))


def installation_counts(
    ledger: Ledger, since: datetime | None = None, states: Iterable[str] = STATES
) -> dict[str, dict[str, int]]:
    """Records per installation (``kind/instance``; ``unreadable``) and state, changed since
    ``since``. The ledger indexes records by state, not by installation, so this reads every
    record of ``states``: seconds for 100 000 records (see README)."""
    out: dict[str, dict[str, int]] = {}
    for state in states:
        for rec in ledger.load_many(ledger.ids(state, since)):
            name = (
                UNREADABLE
                if isinstance(rec, Unreadable)
                else f"{rec.event.source}/{rec.event.source_instance}"
            )
            row = out.setdefault(name, {})
            row[state] = row.get(state, 0) + 1
    return dict(sorted(out.items()))


def _fix(reason: str) -> str:
    if reason == UNREADABLE:
        return UNREADABLE_FIX
    return FIXES.get(reason, OTHER_FIX)


def build(ledger: Ledger, since: datetime | None, max_retries: int, tz: ZoneInfo) -> Report:
    counts = ledger.counts() if since is None else ledger.counts_since(since)
    would_deliver = 0

    def to_fix() -> Iterator[Record | Unreadable]:
        nonlocal would_deliver
        for state in REPORTED_STATES:
            for rec in ledger.load_many(ledger.ids(state, since)):
                if isinstance(rec, Record) and rec.state == "shadowed" and rec.last_error is None:
                    would_deliver += 1
                else:
                    yield rec
        yield from (r for r in held.waiting(ledger) if since is None or r.updated >= since)

    groups = group_records(to_fix(), max_retries, tz)
    return Report(
        since=since,
        counts=counts,
        groups=groups,
        installations=installation_counts(ledger, since),
        would_deliver=would_deliver,
    )


CSV_COLUMNS = tuple(Row.model_fields)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection); LMS
# ids come from outside, so such a cell is quoted as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_csv(report: Report, path: Path, excel: bool = False) -> int:
    """One line per record; returns how many. ``excel``: for Excel set to Dutch (and other
    locales whose list separator is ";"): semicolons, and a byte-order mark by which Excel
    reads the file as UTF-8 (ë, é) instead of the system's code page."""
    lines = 0
    # Built as text and written as bytes: the same file whatever the platform's line separator
    # and the locale's encoding (csv ends each line with \r\n itself). Dutch Excel splits on
    # its list separator ";" and reads UTF-8 only after a BOM.
    text = io.StringIO()
    writer = csv.writer(text, delimiter=";" if excel else ",")
    writer.writerow(CSV_COLUMNS)
    for group in report.groups:
        for row in group.rows:
            data = row.model_dump()
            writer.writerow([_cell(data[c]) for c in CSV_COLUMNS])
            lines += 1
    path.write_bytes(text.getvalue().encode("utf-8-sig" if excel else "utf-8"))
    return lines


def selects(rec: Record, reason: str | None, person: str | None, course: str | None) -> bool:
    """The bulk retry's filter: the last error's code, and the LMS or Coachview-side id."""
    if reason is not None and (rec.last_error is None or rec.last_error.code != reason):
        return False
    if person is not None and person not in (rec.event.person_id, rec.coachview_person_id):
        return False
    return course is None or course in (rec.event.course_id, rec.coachview_course_id)
