"""Reading the sources file (``GRADESYNC_SOURCES``): YAML in, :class:`Sources` out, or every
problem at once, one line each, naming the file, the line and the field.

PyYAML's ``safe_load`` builds no objects from tags; its composed node tree keeps each node's
line, so a pydantic error location (``installations.1.api.url``) is turned back into the line
an operator edits.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from gradesync.sources import KINDS, Sources

# The kinds whose default grade policy is ``fetch`` (Moodle's event never carries a grade).
FETCHING_KINDS = ("moodle", "anewspring")
# A sources file is a few kilobytes; more is a wrong path.
MAX_BYTES = 1024 * 1024


class SourcesError(ValueError):
    """The sources cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def field_name(loc: Sequence[int | str]) -> str:
    """``installations[1].api.url``: the discriminated union's tag (the kind) left out."""
    out = ""
    for part in _without_tags(loc):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(file)"


def _without_tags(loc: Sequence[int | str]) -> list[int | str]:
    return [
        p for i, p in enumerate(loc) if not (p in KINDS and i > 0 and isinstance(loc[i - 1], int))
    ]


def _line(root: yaml.Node | None, loc: Sequence[int | str]) -> int:
    """The line of the deepest node ``loc`` reaches (a missing key: its parent's line)."""
    if root is None:
        return 1
    node: yaml.Node = root
    for part in _without_tags(loc):
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == part), None)
            key = next((k for k, _ in node.value if k.value == part), None)
            if found is None:
                break
            # An unknown key's error is about the key itself.
            node = found if not isinstance(found, yaml.ScalarNode) else (key or found)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
        else:
            break
    return int(node.start_mark.line) + 1


def duplicates(data: Any) -> list[tuple[int, str]]:
    """``(position, kind/instance)`` of each installation named a second time."""
    entries = data.get("installations") if isinstance(data, dict) else None
    seen: set[tuple[str, str]] = set()
    twice: list[tuple[int, str]] = []
    for n, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict):
            continue
        pair = (str(entry.get("kind")), str(entry.get("instance", "default")))
        if pair in seen:
            twice.append((n, "/".join(pair)))
        seen.add(pair)
    return twice


def grade_gaps(data: Any) -> list[tuple[int, str, bool]]:
    """``(position, kind, explicit)`` of each installation whose grade policy is ``fetch``
    (said in the file, or the default) with no ``api`` to fetch the grade from."""
    entries = data.get("installations") if isinstance(data, dict) else None
    gaps: list[tuple[int, str, bool]] = []
    for n, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict) or entry.get("kind") not in FETCHING_KINDS:
            continue
        if entry.get("grade_policy", "fetch") == "fetch" and entry.get("api") is None:
            gaps.append((n, str(entry["kind"]), "grade_policy" in entry))
    return gaps


def _grade_gap(kind: str, explicit: bool) -> str:
    return (
        f"fetch{'' if explicit else ' (the default)'} needs api (url and credential) to fetch "
        f"the grade {kind}'s completion event lacks: add api, or set grade_policy "
        + ("completion_only" if kind == "moodle" else "event or completion_only")
    )


def problems(exc: ValidationError) -> Iterable[tuple[tuple[int | str, ...], str]]:
    # Only an error's loc, type, ctx and msg are read: never its input, which may be a secret.
    for err in exc.errors():
        loc, ctx = tuple(err["loc"]), err.get("ctx") or {}
        if err["type"] == "union_tag_invalid":
            yield (*loc, "kind"), f"unknown kind {ctx.get('tag')!r}: one of {', '.join(KINDS)}"
        elif err["type"] == "union_tag_not_found":
            yield (*loc, "kind"), f"kind is required: one of {', '.join(KINDS)}"
        elif err["type"] == "extra_forbidden":
            yield loc, "unknown key (a typo?)"
        elif err["type"] == "string_type":
            # YAML reads `no`, `off`, `2024` as a boolean or a number, not as the name meant.
            yield (
                loc,
                'must be text: quote it (e.g. instance: "2024"); YAML reads yes/no, on/off and '
                "digits as booleans and numbers",
            )
        else:
            yield loc, err["msg"].removeprefix("Value error, ")


def _read(path: str) -> str:
    """The file's text: a regular file of at most :data:`MAX_BYTES` (``/dev/zero`` or a FIFO
    would otherwise be read for ever)."""
    try:
        # Non-blocking: opening a FIFO blocks until a writer comes (a regular file ignores it).
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise SourcesError([f"{path}: not a regular file"])
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise SourcesError([f"{path}: larger than {MAX_BYTES // 1024} KiB"])
        return raw.decode()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourcesError([f"{path}: cannot be read: {type(exc).__name__}: {exc}"]) from None


def shared_secrets(data: Any, env: Mapping[str, str]) -> list[tuple[int, str, str]]:
    """``(position, field, what)`` of each installation whose webhook secret an earlier one
    already has: one installation's signature would then pass on the other's route."""
    entries = data.get("installations") if isinstance(data, dict) else None
    first: dict[str, str] = {}
    found: list[tuple[int, str, str]] = []
    for n, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict):
            continue
        field = "secret" if entry.get("secret") is not None else "secret_env"
        value = entry.get(field)
        secret = env.get(value) if field == "secret_env" and isinstance(value, str) else value
        if not isinstance(secret, str) or not secret:
            continue
        name = f"installations[{n}] ({entry.get('kind')}/{entry.get('instance', 'default')})"
        if secret in first:
            found.append((n, field, first[secret]))
        else:
            first[secret] = name
    return found


def load(path: str, env: Mapping[str, str]) -> Sources:
    """Read and validate ``path``; :class:`SourcesError` lists every problem."""
    text = _read(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        # One line: a character YAML refuses (a ReaderError: no mark, no problem) says its
        # position on a second line of its own.
        problem = " ".join(str(getattr(exc, "problem", exc)).split())
        raise SourcesError([f"{where}: not valid YAML: {problem}"]) from None
    found: list[tuple[tuple[int | str, ...], str]] = [
        (("installations", n), f"{name} is named twice (instance must be unique per kind)")
        for n, name in duplicates(data)
    ]
    found += [
        (("installations", n, "grade_policy"), _grade_gap(kind, explicit))
        for n, kind, explicit in grade_gaps(data)
    ]
    found += [
        (
            ("installations", n, field),
            f"is the webhook secret of {other} too: give each installation its own (a "
            "shared one lets either's signature pass on the other's route)",
        )
        for n, field, other in shared_secrets(data, env)
    ]
    sources: Sources | None = None
    try:
        sources = Sources.parse(data, env)
    except ValidationError as exc:
        twice = any("is named twice" in msg for _, msg in found)
        found += [
            (loc, msg)
            for loc, msg in problems(exc)
            if not (twice and "is named twice" in msg)  # already said, with its line
        ]
    if found or sources is None:
        # In the order of the file, as an operator works through it.
        lines = sorted(((_line(root, loc), field_name(loc), msg) for loc, msg in found))
        raise SourcesError([f"{path}:{line}: {field}: {msg}" for line, field, msg in lines])
    return sources
