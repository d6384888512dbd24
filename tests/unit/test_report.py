"""`gradesync report`'s grouping (a pure function over records), the ledger's batched reads
behind it (fakeredis), the CSV, and the bulk retry's filter."""

from __future__ import annotations

import codecs
import csv
import io
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import fakeredis
from hypothesis import given
from hypothesis import strategies as st

from gradesync.event import CompletionEvent
from gradesync.held import UNKNOWN
from gradesync.ledger import Ledger
from gradesync.record import LedgerError, Record, Unreadable
from gradesync.report import CSV_COLUMNS, build, days_left, group_records, selects, write_csv

TZ = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def event(person: str = "57", course: str = "12", day: int = 20) -> CompletionEvent:
    return CompletionEvent.model_validate(
        {
            "source": "moodle",
            "source_instance": "https://lms.example.nl",
            "person_id": person,
            "course_id": course,
            "grade": "8",
            "completed_at": f"2026-11-{day:02d}T23:30:00+00:00",  # the 21st in Amsterdam
        }
    )


def record(
    code: str, person: str = "57", course: str = "12", day: int = 20, **more: object
) -> Record:
    ev = event(person, course, day)
    fields: dict[str, object] = {
        "id": ev.key.id,
        "event": ev,
        "state": "unresolved",
        "first_seen": NOW,
        "updated": NOW,
        "last_error": LedgerError(code=code, message=f"{code} message"),
    }
    return Record.model_validate(fields | more)


def test_records_are_grouped_by_what_to_fix() -> None:
    records: list[Record | Unreadable] = [
        record("unknown_person", person="1", day=10, daily_retries=3),
        record("unknown_person", person="1", course="13", day=12, daily_retries=29),
        record("unknown_person", person="2", day=5, state="given_up", daily_retries=30),
        record("unknown_course", course="99", day=15),
        record("not_enrolled", person="3", course="12", day=16, daily_retries=1),
        record("http_400", day=17, state="given_up"),
        Unreadable(id="damaged", problems=["state: literal_error"]),
    ]
    groups = {g.reason: g for g in group_records(records, 30, TZ)}
    assert list(groups) == [
        "unknown_person",
        "unknown_course",
        "not_enrolled",
        "http_400",
        "unreadable",
    ]
    persons = groups["unknown_person"]
    assert (persons.count, persons.given_up, persons.distinct) == (3, 1, 2)
    assert str(persons.oldest_completion) == "2026-11-06"  # 5th 23:30 UTC = 6th in Amsterdam
    assert persons.days_left == 0  # the given-up one
    assert [r.days_left for r in persons.rows] == [0, 27, 1]  # oldest completion first
    assert groups["unknown_course"].days_left == 30
    assert groups["not_enrolled"].rows[0].days_left == 29
    assert groups["http_400"].what_to_fix.startswith("see `gradesync show KEY`")
    unreadable = groups["unreadable"]
    assert unreadable.count == 1 and unreadable.rows[0].note == "state: literal_error"
    assert "purge --unreadable" in unreadable.what_to_fix


def test_the_coachview_side_id_is_what_is_counted_and_filtered() -> None:
    mapped = record("unknown_person", person="42", match_person_id="EXT-42")
    (group,) = group_records([mapped, record("unknown_person", person="EXT-42")], 30, TZ)
    assert group.distinct == 1  # both look for EXT-42 in Coachview
    assert group.rows[0].coachview_person_id == "EXT-42"
    assert selects(mapped, "unknown_person", "42", None)
    assert selects(mapped, None, "EXT-42", "12")
    assert not selects(mapped, "not_enrolled", None, None)
    assert not selects(mapped, None, None, "13")
    # `gradesync retry --person X` must leave every other learner's records alone.
    assert not selects(mapped, None, "43", None)
    assert not selects(record("unknown_person", person="43"), None, "42", None)
    assert not selects(mapped, None, "42", "13")
    assert selects(mapped, None, None, None)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["unknown_person", "unknown_course", "not_enrolled", "x", "y"]),
            st.integers(0, 40),
            st.sampled_from(["unresolved", "given_up"]),
            st.integers(1, 28),
        ),
        max_size=30,
    )
)
def test_every_record_is_in_exactly_one_group(
    specs: list[tuple[str, int, str, int]],
) -> None:
    records: list[Record | Unreadable] = [
        record(code, person=str(i), day=day, daily_retries=retries, state=state)
        for i, (code, retries, state, day) in enumerate(specs)
    ]
    groups = group_records(records, 30, TZ)
    ids = [row.record_id for g in groups for row in g.rows]
    assert sorted(ids) == sorted(r.id for r in records)
    for g in groups:
        assert g.count == len(g.rows) and 0 <= g.days_left <= 30
        assert g.oldest_completion == min(row.completed_on for row in g.rows if row.completed_on)


def unresolved_in(ledger: Ledger, person: str, code: str, at: datetime) -> str:
    rid = ledger.admit(event(person), at).record.id
    ledger.start(rid, at)
    ledger.unresolved(
        rid,
        at,
        LedgerError(code=code, message="m"),
        max_retries=30,
        retry_time=time(3),
        tz=TZ,
    )
    return rid


def test_the_ledger_is_read_by_state_in_batches_and_survives_damage() -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    at = [NOW + timedelta(seconds=i) for i in range(5)]
    ids = [unresolved_in(ledger, str(i), "unknown_person", at[i]) for i in range(5)]
    ledger.r.set(f"gs:rec:{ids[2]}", b'{"state": "teleported"}')
    ledger.r.delete(f"gs:rec:{ids[3]}")  # purged between the index read and the MGET
    found = list(ledger.load_many(ledger.ids("unresolved"), batch=2))
    assert [r.id for r in found] == [ids[0], ids[1], ids[2], ids[4]]
    assert isinstance(found[2], Unreadable)
    report = build(ledger, None, 30, TZ)
    assert [(g.reason, g.count) for g in report.groups] == [
        ("unknown_person", 3),
        ("unreadable", 1),
    ]


def test_since_limits_the_counts_and_the_groups() -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    unresolved_in(ledger, "1", "unknown_person", NOW - timedelta(days=40))
    unresolved_in(ledger, "2", "unknown_course", NOW)
    report = build(ledger, NOW - timedelta(days=1), 30, TZ)
    assert report.counts["unresolved"] == 1
    assert [g.reason for g in report.groups] == ["unknown_course"]
    assert build(ledger, None, 30, TZ).counts["unresolved"] == 2
    since = NOW - timedelta(days=1)
    assert report.since == since
    name = "moodle/https://lms.example.nl"
    assert report.installations == {name: {"unresolved": 1}}
    assert build(ledger, None, 30, TZ).installations == {name: {"unresolved": 2}}


def test_since_includes_a_held_record_changed_at_that_very_instant() -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    rid = ledger.admit(event("1"), NOW).record.id
    ledger.defer(rid, NOW, NOW + timedelta(minutes=15), LedgerError(code=UNKNOWN, message="m"))
    (group,) = build(ledger, NOW, 30, TZ).groups
    assert group.reason == UNKNOWN and [r.record_id for r in group.rows] == [rid]
    assert build(ledger, NOW + timedelta(microseconds=1), 30, TZ).groups == []


def test_no_days_are_left_once_the_retries_are_spent() -> None:
    assert days_left(record("unknown_person", daily_retries=30), 30) == 0
    assert days_left(record("unknown_person", daily_retries=31), 30) == 0
    assert days_left(record("unknown_person", daily_retries=29), 30) == 1


def test_the_csv_has_one_line_per_record_and_no_formulas(tmp_path: Path) -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    unresolved_in(ledger, "=HYPERLINK(1)", "unknown_person", NOW)
    unresolved_in(ledger, "7", "not_enrolled", NOW)
    path = tmp_path / "r.csv"
    assert write_csv(build(ledger, None, 30, TZ), path) == 2
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [r["group"] for r in rows] == ["unknown_person", "not_enrolled"]
    assert rows[0]["person_id"] == "'=HYPERLINK(1)"
    assert rows[1]["completed_on"] == "2026-11-21" and rows[1]["days_left"] == "30"
    assert path.read_bytes().startswith(b"group,state,record_id,")
    assert path.read_bytes().count(b"\r\n") == 3  # RFC 4180 line ends, on every platform


def test_an_unreadable_records_missing_fields_are_empty_cells(tmp_path: Path) -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    rid = unresolved_in(ledger, "1", "unknown_person", NOW)
    ledger.r.set(f"gs:rec:{rid}", b'{"state": "teleported"}')
    path = tmp_path / "r.csv"
    assert write_csv(build(ledger, None, 30, TZ), path) == 1
    (row,) = csv.DictReader(path.open(encoding="utf-8"))
    assert row["group"] == "unreadable" and row["completed_on"] == ""


def test_what_a_group_counts_is_what_the_administrator_fixes() -> None:
    groups = group_records(
        [
            record("unknown_course", person="1", course="99"),
            record("unknown_course", person="2", course="99"),
            record("unknown_course", person="3", course="98", state="shadowed"),
            record("other_b", person="1"),
            record("other_a", person="2"),
            record("other_a", person="3"),
            Unreadable(id="damaged", problems=["state: literal_error"]),
        ],
        30,
        TZ,
    )
    course, *others, unreadable = groups
    assert (course.reason, course.count, course.distinct, course.shadowed) == (
        "unknown_course",
        3,
        2,  # one course to fix for two learners, and another
        1,
    )
    assert course.installations == {"moodle/https://lms.example.nl": 3}
    # Codes without a known fix: the bigger group first.
    assert [(g.reason, g.count, g.distinct) for g in others] == [
        ("other_a", 2, 2),
        ("other_b", 1, 1),
    ]
    assert unreadable.installations == {"unreadable": 1}


def test_rows_of_an_unreadable_record_and_of_one_without_an_error() -> None:
    damaged = Unreadable(id="damaged", problems=["state: literal_error", "event: missing"])
    never_failed = record("x").model_copy(update={"last_error": None})
    (unknown,), (unreadable,) = (g.rows for g in group_records([never_failed, damaged], 30, TZ))
    assert (unknown.group, unknown.note) == ("unknown", "")
    (failed,) = group_records([record("http_400")], 30, TZ)[0].rows
    assert (failed.group, failed.note) == ("http_400", "http_400 message")
    assert unreadable.model_dump() == {
        "group": "unreadable",
        "state": "unreadable",
        "record_id": "damaged",
        "source": "",
        "instance": "",
        "person_id": "",
        "course_id": "",
        "coachview_person_id": "",
        "coachview_course_id": "",
        "completed_on": None,
        "daily_retries": 0,
        "days_left": 0,
        "note": "state: literal_error; event: missing",
    }


def test_the_excel_csv_opens_as_columns_in_a_dutch_excel(tmp_path: Path) -> None:
    """Dutch Excel splits on its list separator ";" and reads UTF-8 only after a BOM; a
    grade's decimal comma and a name's ë must survive as one cell each."""
    ledger = Ledger(fakeredis.FakeRedis())
    unresolved_in(ledger, "Chloë;7,5", "unknown_person", NOW)
    path = tmp_path / "r.csv"
    assert write_csv(build(ledger, None, 30, TZ), path, excel=True) == 1
    data = path.read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    text = data.decode("utf-8-sig")
    dialect = csv.Sniffer().sniff(text, delimiters=",;\t")
    assert dialect.delimiter == ";"
    # What Excel does with its list separator ";": split each line into cells.
    header, row = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert len(header) == len(row) == len(CSV_COLUMNS) > 1
    assert dict(zip(header, row, strict=True))["person_id"] == "Chloë;7,5"


def test_the_plain_csv_keeps_commas(tmp_path: Path) -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    unresolved_in(ledger, "57", "unknown_person", NOW)
    path = tmp_path / "r.csv"
    write_csv(build(ledger, None, 30, TZ), path)
    assert not path.read_bytes().startswith(codecs.BOM_UTF8)
    assert csv.Sniffer().sniff(path.read_text(encoding="utf-8")).delimiter == ","
