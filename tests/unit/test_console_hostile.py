"""The console against hostile values and callers (issue 25): text that looks like a moment,
login throttling, forms that are too large."""

from __future__ import annotations

from datetime import UTC, datetime

from gradesync.event import CompletionEvent
from tests.unit.test_console import EVENT, Console


def test_a_history_value_that_only_looks_like_a_moment_is_shown_as_text() -> None:
    """An event id (or an ILIAS free-text mark) ``0001-01-01T00:35:18+14:00`` is a valid ISO
    moment that overflows when moved to UTC: the record page shows it as it is, not a 500."""
    console = Console()
    rid = console.unresolved()
    odd = "0001-01-01T00:35:18+14:00"
    later = CompletionEvent.model_validate(EVENT | {"event_id": odd})
    console.ledger.admit(later, datetime(2026, 11, 20, 16, 0, tzinfo=UTC))
    console.login()
    page = console.client.get(f"/console/records/{rid}")
    assert page.status_code == 200 and odd in page.text
