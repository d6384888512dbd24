"""``If-Match`` as RFC 9110 defines it: entity-tag syntax (§8.8.3) and strong comparison (§13.1.1).

The simulator's etags are strong. A weak etag (``W/"..."``) never satisfies ``If-Match``: it only
says two representations are semantically equivalent, which is not enough to guard a write.
"""

from __future__ import annotations

import re

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE ; etagc = %x21 / %x23-7E / obs-text
_ENTITY_TAG = re.compile(r'(W/)?("[\x21\x23-\x7e\x80-\xff]*")')


class MalformedIfMatch(ValueError):
    """The header is neither ``*`` nor a list of entity-tags."""


def strong_etag(opaque: str) -> str:
    return f'"{opaque}"'


def _skip_ows(value: str, pos: int) -> int:
    while pos < len(value) and value[pos] in " \t":
        pos += 1
    return pos


def _entity_tags(value: str) -> list[tuple[bool, str]]:
    """``#entity-tag``: (weak, quoted tag) pairs; empty list elements are allowed (§5.6.1)."""
    tags: list[tuple[bool, str]] = []
    pos, end = 0, len(value)
    while pos < end:
        pos = _skip_ows(value, pos)
        if pos < end and value[pos] == ",":
            pos += 1
            continue
        if pos == end:
            break
        match = _ENTITY_TAG.match(value, pos)
        if match is None:
            raise MalformedIfMatch(f"If-Match: not an entity-tag at {value[pos:]!r}")
        tags.append((match.group(1) is not None, match.group(2)))
        pos = _skip_ows(value, match.end())
        if pos < end and value[pos] != ",":
            raise MalformedIfMatch(f"If-Match: expected ',' at {value[pos:]!r}")
    return tags


def if_match_holds(header_values: list[str], current_etag: str) -> bool:
    """Whether ``If-Match`` (all its header lines) lets a write to a resource proceed.

    ``*`` holds for any existing resource (callers only ask about existing ones); otherwise the
    condition holds when a listed strong tag equals ``current_etag`` character for character.
    """
    combined = ", ".join(header_values)
    if combined.strip() == "*":
        return True
    tags = _entity_tags(combined)
    if not tags:
        raise MalformedIfMatch("If-Match is empty")
    return any(not weak and tag == current_etag for weak, tag in tags)
