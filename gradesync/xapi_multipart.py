"""The statements of an xAPI request with attachments (xAPI-Communication.md 1.5.2): a
``multipart/mixed`` body whose first part is the statements (``application/json``) and whose
other parts are the attachments' raw data. Coachview has no use for attachments: only the first
part is read and the rest is never parsed (Python's ``email`` parser takes ~20 s over a 1 MiB
body of nested or empty parts), so a sender with attachments is answered like any other and
not refused (a 415 it would resend for ever). Pure: no I/O.
"""

from __future__ import annotations

from email.message import Message


class NotStatements(ValueError):
    """A multipart body without its statements part."""


def _boundary(content_type: str) -> bytes:
    header = Message()
    header["Content-Type"] = content_type
    boundary = header.get_boundary()
    if not boundary:
        raise NotStatements("a multipart/mixed Content-Type needs a boundary")
    return boundary.encode("latin-1", "replace")


def statements_part(content_type: str, body: bytes) -> bytes:
    """The first part's bytes, or :class:`NotStatements` naming what is wrong."""
    delimiter = b"--" + _boundary(content_type)
    start = body.find(delimiter)
    head_end = body.find(b"\r\n\r\n", start)
    if start < 0 or head_end < 0:
        raise NotStatements("no part found for the boundary")
    head = Message()
    for line in body[start + len(delimiter) : head_end].decode("latin-1").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            head[name.strip()] = value.strip()
    if head.get_content_type() != "application/json":
        raise NotStatements("the first part must be the statements (application/json)")
    end = body.find(b"\r\n" + delimiter, head_end)
    if end < 0:
        raise NotStatements("the statements part is not closed by the boundary")
    return body[head_end + 4 : end]
