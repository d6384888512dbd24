"""Statements with attachments (gradesync/xapi_multipart.py): the statements part of the bodies
real senders write (tests/fixtures/xapi-multipart.json), what RFC 2046 lets a body carry
around it, and the reason a sender reads in the 400 when a body has no statements part."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gradesync.xapi_multipart import NotStatements, statements_part

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EXAMPLES: list[dict[str, Any]] = json.loads((FIXTURES / "xapi-multipart.json").read_text())[
    "examples"
]
SPEC = next(e for e in EXAMPLES if e["name"] == "xapi-spec-1.5.2-example")
CONTENT_TYPE: str = SPEC["content_type"]


def body(example: dict[str, Any]) -> bytes:
    text = "\r\n".join(example["lines"]) if "lines" in example else example["body"]
    return str(text).encode()


def head(*lines: str) -> bytes:
    """A one-part body whose part has these header lines and the spec example's statement."""
    statement = json.dumps({"verb": {"id": SPEC["verb"]}}).encode()
    delimiter = b"--abcABC0123'()+_,-./:=?"
    return b"\r\n".join(
        [delimiter, *(line.encode() for line in lines), b"", statement, delimiter + b"--"]
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["name"] for e in EXAMPLES])
def test_the_statements_of_a_real_senders_body_are_its_first_part_exactly(
    example: dict[str, Any],
) -> None:
    part = statements_part(example["content_type"], body(example))
    # Up to the CRLF before the next delimiter (RFC 2046: it belongs to the delimiter), and not
    # an empty part when the body opens with a CRLF before its first delimiter (the spec's does).
    assert part[:1] == b"{" and part[-1:] == b"}"
    assert json.loads(part)["verb"]["id"] == example["verb"]


def test_a_preamble_before_the_first_part_is_passed_over() -> None:
    """RFC 2046 5.1.1: text before the first delimiter is a preamble, to be ignored; its blank
    line is not the end of the first part's header."""
    preamble = b"This is a message with multiple parts in MIME format.\r\n\r\n"
    part = statements_part(CONTENT_TYPE, preamble + body(SPEC))
    assert json.loads(part)["verb"]["id"] == SPEC["verb"]


@pytest.mark.parametrize(
    "lines",
    [
        # The header in any order, and read line by line: the type is not read out of the
        # line before it.
        ("Content-Transfer-Encoding: binary", "Content-Type: application/json"),
        ("Content-Type: application/json", "Content-Length: 42"),
        # A parameter's quoted value may hold a colon (RFC 2045 5.1): the name ends at the first.
        ('Content-Type: application/json; profile="urn:example:statements"',),
        ("content-type:  Application/JSON ",),
    ],
)
def test_the_first_parts_header_is_read_as_mime_reads_it(lines: tuple[str, ...]) -> None:
    assert json.loads(statements_part(CONTENT_TYPE, head(*lines))) == {"verb": {"id": SPEC["verb"]}}


@pytest.mark.parametrize(
    ("content_type", "data", "reason"),
    [
        ("multipart/mixed", body(SPEC), "a multipart/mixed Content-Type needs a boundary"),
        ("multipart/mixed; boundary=other", body(SPEC), "no part found for the boundary"),
        # A blank line alone is no part: the boundary must be there too.
        (
            "multipart/mixed; boundary=other",
            b"Content-Type: application/json\r\n\r\n{}",
            "no part found for the boundary",
        ),
        (CONTENT_TYPE, b"--abcABC0123'()+_,-./:=?\r\n{}", "no part found for the boundary"),
        # RFC 2231 lets the parameter name a character outside Latin-1, which no body can carry
        # in the ASCII of a delimiter: that body has no part, it is no crash.
        (
            "multipart/mixed; boundary*=utf-8''%E2%82%AC",
            body(SPEC),
            "no part found for the boundary",
        ),
        (
            CONTENT_TYPE,
            head("Content-Type: text/plain"),
            "the first part must be the statements (application/json)",
        ),
        (CONTENT_TYPE, head(), "the first part must be the statements (application/json)"),
        (
            CONTENT_TYPE,
            head("Content-Type: application/json").removesuffix(b"\r\n--abcABC0123'()+_,-./:=?--"),
            "the statements part is not closed by the boundary",
        ),
    ],
)
def test_a_body_without_its_statements_part_is_refused_with_the_reason(
    content_type: str, data: bytes, reason: str
) -> None:
    with pytest.raises(NotStatements) as caught:
        statements_part(content_type, data)
    assert str(caught.value) == reason
