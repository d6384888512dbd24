"""The CLI on odd input: a clear message and exit code, never a traceback; in a file, the good
lines still go in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from typer.testing import CliRunner

from gradesync import cli
from gradesync.cli import common
from gradesync.event import CompletionEvent
from gradesync.ledger import Ledger, utcnow

FIXTURES = Path(__file__).parent.parent / "fixtures"
GOOD = json.loads((FIXTURES / "canonical.json").read_text())


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Ledger:
    ledger = Ledger(fakeredis.FakeRedis())
    monkeypatch.setattr(common, "ledger", lambda: ledger)
    monkeypatch.setattr(common, "send", lambda rid: None)
    return ledger


def run(*args: str, stdin: bytes | None = None) -> Any:
    return CliRunner().invoke(cli.app, list(args), input=stdin)


def test_a_file_of_mixed_bad_lines_keeps_the_good_ones(ledger: Ledger, tmp_path: Path) -> None:
    lines = [
        b"[" * 5000 + b"]" * 5000,
        b'{"grade": ' + b"9" * 5000 + b"}",
        json.dumps({**GOOD, "completed_at": "0001-01-01T00:00:00+01:00"}).encode(),
        json.dumps({**GOOD, "completed_at": 1e20}).encode(),
        b"\xff\xfe not utf-8",
        json.dumps(GOOD).encode(),
    ]
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(lines))
    result = run("enqueue", str(path))
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 1, result.output
    out = result.output.splitlines()
    assert [line.split()[1] for line in out] == ["rejected:"] * 5 + ["accepted"]
    assert "nested deeper" in out[0] and "number is longer" in out[1]
    assert "completed_at" in out[2] and "completed_at" in out[3] and "not UTF-8" in out[4]
    assert ledger.counts()["queued"] == 1


def test_a_binary_file_is_refused_with_a_message(ledger: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    result = run("enqueue", str(path))
    assert result.exit_code == 2 and "binary file" in result.output
    assert isinstance(result.exception, SystemExit)


def test_enqueue_names_the_sources_it_reads(ledger: Ledger, tmp_path: Path) -> None:
    """``--source canonical`` is the canonical event, as no ``--source`` is; a source gradesync
    has no parser for is a usage error listing those it has."""
    path = tmp_path / "event.json"
    path.write_text(json.dumps(GOOD))
    named = run("enqueue", "--source", "canonical", str(path))
    assert named.exit_code == 0 and "accepted" in named.output, named.output
    unknown = run("enqueue", "--source", "blackboard", str(path))
    said = " ".join(unknown.output.replace("\u2502", " ").split())  # the error box's sides
    assert unknown.exit_code == 2
    assert "unknown source 'blackboard'; known sources: moodle, ilias, anewspring, xapi" in said


def test_ilias_xml_that_is_not_utf8_is_refused(ledger: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "lp.xml"
    path.write_bytes(b"<LPData>\xff</LPData>")
    result = run("enqueue", "--source", "ilias", str(path))
    # Joined: the message follows the file's path, so where the line wraps depends on its length.
    assert result.exit_code == 2 and "not UTF-8" in " ".join(result.output.split())


def test_show_with_bytes_that_are_not_utf8(ledger: Ledger) -> None:
    result = run("show", "abc\udcff")
    assert result.exit_code == 1 and "not UTF-8" in result.output
    assert isinstance(result.exception, SystemExit)


def test_purge_with_an_absurd_retention_is_a_usage_error(ledger: Ledger) -> None:
    result = run("purge", "--older-than", "99999999")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "36500" in result.output


def test_an_unreadable_record_is_listed_shown_and_removable(ledger: Ledger) -> None:
    rid = ledger.admit(CompletionEvent.model_validate(GOOD), utcnow()).record.id
    ledger.r.set(f"gs:rec:{rid}", b'{"state": "queued", "event": {"grade": 1}}')
    listed = run("list")
    assert listed.exit_code == 0 and "unreadable" in listed.output and rid in listed.output
    shown = run("show", rid)
    assert shown.exit_code == 1 and "cannot be read" in shown.output
    gave_up = run("give-up", rid, "--reason", "x")
    assert gave_up.exit_code == 1 and isinstance(gave_up.exception, SystemExit)
    removed = run("purge", "--unreadable")
    assert removed.exit_code == 0 and rid in removed.output
    assert run("list", "--json").output.strip() == "[]"


def test_backfill_of_unreadable_files_says_why(ledger: Ledger, tmp_path: Path) -> None:
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\xff\xd8\xff\xe0 not a csv")
    columns = tmp_path / "columns.csv"
    columns.write_text("who,what\n1,2\n")
    for path, says in (
        (tmp_path / "missing.csv", "cannot read"),
        (binary, "not a UTF-8 CSV"),
        (columns, "missing column"),
    ):
        result = run("backfill", str(path))
        assert result.exit_code == 2 and says in " ".join(result.output.split()), result.output
        assert isinstance(result.exception, SystemExit)


def test_give_up_reasons_are_bounded_and_open_records_are_never_purged(ledger: Ledger) -> None:
    rid = ledger.admit(CompletionEvent.model_validate(GOOD), utcnow()).record.id
    too_long = run("give-up", rid, "--reason", "x" * 501)
    assert too_long.exit_code == 2 and "500" in too_long.output
    queued = run("purge", "--older-than", "1", "--state", "queued")
    assert queued.exit_code == 2 and "only closed records" in queued.output
    assert ledger.get(rid) is not None


def test_retry_due_refuses_an_as_of_far_from_now(ledger: Ledger) -> None:
    for far in ("9999-12-31T23:59:59+00:00", "2000-01-01T00:00:00+00:00"):
        result = run("retry-due", "--as-of", far)
        assert result.exit_code == 2 and "within 31 days" in " ".join(result.output.split())


def test_report_and_backfill_name_a_path_they_cannot_write(ledger: Ledger, tmp_path: Path) -> None:
    report = run("report", "--csv", str(tmp_path / "missing-dir" / "out.csv"))
    assert report.exit_code == 2 and "cannot write" in " ".join(report.output.split())
    rows = tmp_path / "rows.csv"
    rows.write_text("source,person_id,course_id,completed_at\n")
    backfill = run("backfill", str(rows), "--rejects", str(tmp_path / "nope" / "r.csv"))
    assert backfill.exit_code == 2 and "cannot write" in " ".join(backfill.output.split())


def test_cli_actions_record_the_operator_and_list_labels_its_zone(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "alice")
    rid = ledger.admit(CompletionEvent.model_validate(GOOD), utcnow()).record.id
    assert run("give-up", rid, "--reason", "left the company", "--by", "bob").exit_code == 0
    assert run("retry", rid).exit_code == 0
    by = [(h["what"], h.get("by")) for h in ledger.history(rid)]
    assert by[-2:] == [("given_up", "bob"), ("operator_retry", "alice")]
    listed = run("list")
    assert "updated (Europe/Amsterdam)" in " ".join(listed.output.split())


def test_show_tells_the_history_in_words_not_python(ledger: Ledger) -> None:
    """`gradesync show` printed ``last_error: {'code': …}``, ``outcome: None`` and each history
    entry as a JSON dict; it now says them as the console does (``--json`` keeps the data)."""
    from gradesync.record import LedgerError

    event = CompletionEvent.model_validate(GOOD)
    now = utcnow()
    rid = ledger.admit(event, now).record.id
    ledger.start(rid, now)
    ledger.fail(rid, now, LedgerError(code="unknown_person", message="no such externId"))
    result = run("show", rid)
    assert result.exit_code == 0, result.output
    for python in ("{'", '{"', "None", "[]"):
        assert python not in result.output, result.output
    assert "no such externId" in result.output  # the system's own message stays
    assert "(Europe/Amsterdam)" in result.output or "CET" in result.output  # times have a zone
    data = json.loads(run("show", rid, "--json").output)
    assert data["last_error"]["code"] == "unknown_person"
