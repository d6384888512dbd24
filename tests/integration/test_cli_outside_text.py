"""Outside text in the CLI is shown as typed, never as Rich markup or terminal control (issue 25
item 6): LMS ids, rejected field names and Coachview's error pages, over a real redis-server."""

from __future__ import annotations

import json

from gradesync.ledger import utcnow
from gradesync.record import LedgerError
from tests.integration.conftest import Stack, canonical, gradesync

ESC = "\x1b"
# An HTML title as a Coachview error page might carry it, with an OSC-8 hyperlink and a colour.
PAGE = f"<title>[/] {ESC}]8;;https://evil.example/{ESC}\\click{ESC}]8;;{ESC}\\ {ESC}[31mred</title>"


def test_show_prints_ids_and_stored_errors_as_typed(clean: Stack) -> None:
    for person in ("[/]", "[red]x", "[link=https://evil.example]y[/link]"):
        event = canonical(person_id=person, event_id=f"odd-{person}")
        rid = clean.ledger.admit(event, utcnow()).record.id
        clean.ledger.fail(rid, utcnow(), LedgerError(code="unexpected_response", message=PAGE))
        shown = gradesync("show", rid)
        assert shown.returncode == 0, shown.stderr
        assert person in shown.stdout  # the id as typed: no markup error, nothing vanished
        assert ESC not in shown.stdout and "[/] ]8;;" not in shown.stdout
        assert "click" in shown.stdout and "red" in shown.stdout


def test_enqueue_names_a_rejected_field_that_looks_like_markup(clean: Stack) -> None:
    body = json.dumps({**json.loads(canonical().model_dump_json()), "[/]": 1, "[red]z": 2})
    result = gradesync("enqueue", "-", stdin=body)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "[/]" in result.stdout + result.stderr and "[red]z" in result.stdout + result.stderr
