"""Reading a file of events (``gradesync enqueue FILE``): one JSON document, an array or NDJSON,
each item numbered as the operator finds it in the file, a binary file refused saying so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from producers.reader import NotText, decode, read_items

FIXTURES = Path(__file__).parent.parent / "fixtures"
GOOD = json.loads((FIXTURES / "canonical.json").read_text())
OTHER = {**GOOD, "event_id": "other"}


def items(data: bytes) -> list[tuple[int, Any, str | None]]:
    return [(item.position, item.data, item.error) for item in read_items(data)]


def test_an_array_is_one_item_per_element_numbered_from_one() -> None:
    assert items(json.dumps([GOOD, OTHER], indent=2).encode()) == [
        (1, GOOD, None),
        (2, OTHER, None),
    ]


def test_ndjson_items_carry_their_line_number_past_blank_lines() -> None:
    lines = [json.dumps(GOOD), "", json.dumps(OTHER), "{not json"]
    read = items("\n".join(lines).encode())
    assert [(position, data) for position, data, _ in read] == [(1, GOOD), (3, OTHER), (4, None)]
    error = read[2][2]
    assert error is not None and error.startswith("malformed JSON on line 4: ")


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(GOOD),  # one document
        json.dumps([GOOD, OTHER], indent=2),  # an array over several lines
        json.dumps(GOOD) + "\n" + json.dumps(OTHER) + "\n",  # NDJSON
    ],
)
def test_a_file_saved_with_a_byte_order_mark_reads_as_without_one(text: str) -> None:
    """Notepad and PowerShell write UTF-8 with a BOM (finding: NDJSON's first line was refused
    as malformed, its event lost)."""
    plain = items(text.encode())
    assert items(b"\xef\xbb\xbf" + text.encode()) == plain
    assert all(error is None for _, _, error in plain)


def test_a_binary_file_is_refused_whole_naming_it() -> None:
    with pytest.raises(NotText) as events:
        list(read_items(json.dumps(GOOD).encode() + b"\n\x00\x01"))
    assert str(events.value) == "this is a binary file, not JSON text"
    with pytest.raises(NotText) as xml:
        decode(b"<LPData>\x00</LPData>")
    assert str(xml.value) == "this is a binary file, not JSON or XML text"


def test_an_xml_document_is_read_as_utf8_text_without_its_byte_order_mark() -> None:
    assert decode("\ufeff<LPData>é</LPData>".encode()) == "<LPData>é</LPData>"
    with pytest.raises(NotText) as latin:
        decode("<LPData>é</LPData>".encode("latin-1"))
    assert str(latin.value) == "not UTF-8 text (byte 8)"
