"""The local stack's environment file: ``gradesync stack up`` writes what it chose (ports,
generated logins, development settings) to ``.local/stack.env``; every ``gradesync`` command
started in that directory, or below it, reads it, so a second terminal needs no variables.

The file holds passwords: mode 0600. A variable set in the environment wins over the file's,
and when REDIS_URL or COACHVIEW_BASE_URL is set to another place than the stack's the file is
not read at all: a command never mixes the stack's Redis with another Coachview, or the
reverse.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

FILE = Path(".local") / "stack.env"
# What decides where a command's reads and writes go: set elsewhere, the file stays unread.
WHERE = ("REDIS_URL", "COACHVIEW_BASE_URL")
# The variables gradesync and its processes read (Settings, Flower, per-installation secrets).
PREFIXES = (
    "REDIS_URL",
    "COACHVIEW_",
    "GRADESYNC_",
    "MOODLE_",
    "ANEWSPRING_",
    "ILIAS_",
    "XAPI_",
    "FLOWER_",
)


def find(start: Path) -> Path | None:
    """The stack file of ``start`` or of the nearest directory above it."""
    for directory in (start, *start.parents):
        if (directory / FILE).is_file():
            return directory / FILE
    return None


def read(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, eq, value = line.partition("=")
        if eq and name and not name.startswith("#"):
            values[name] = value
    return values


def write(path: Path, environ: Mapping[str, str]) -> None:
    """The stack's variables, readable by its owner only (they include the console login)."""
    chosen = {k: v for k, v in sorted(environ.items()) if k.startswith(PREFIXES) and "\n" not in v}
    text = "# written by `gradesync stack up`; removed when it stops\n" + "".join(
        f"{k}={v}\n" for k, v in chosen.items()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file may have had a wider mode
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def apply(environ: MutableMapping[str, str], start: Path) -> str | None:
    """Fill ``environ``'s unset variables from the stack file found from ``start``; returns
    what a person should be told (``None``: there is no stack file)."""
    path = find(start)
    if path is None:
        return None
    values = read(path)
    elsewhere = [n for n in WHERE if environ.get(n) and environ[n] != values.get(n)]
    if elsewhere:
        return f"not using {path}: {' and '.join(elsewhere)} set here point(s) elsewhere"
    for name, value in values.items():
        if not environ.get(name):  # empty counts as unset, as in Settings
            environ[name] = value
    return f"using the local stack's settings from {path} (variables set here win)"
