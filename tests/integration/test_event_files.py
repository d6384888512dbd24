"""A file of events as Windows tools save it, through `gradesync enqueue`, a real worker and
the simulator: NDJSON with a byte order mark delivers its first line too (it was refused as
malformed JSON, its completion lost)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.conftest import Stack, canonical, gradesync


def test_an_ndjson_file_with_a_byte_order_mark_delivers_every_line(
    clean: Stack, tmp_path: Path
) -> None:
    clean.seed()
    events = [canonical(event_id="bom-1"), canonical(person_id="58", event_id="bom-2")]
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(e.model_dump_json().encode() for e in events))
    result = gradesync("enqueue", str(path), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["outcome"] for line in lines] == ["created", "created"]
    assert [clean.settle(line["key"]).state for line in lines] == ["delivered", "delivered"]
