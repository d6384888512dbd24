"""The local stack's environment file: ``gradesync stack up`` writes what it chose (ports,
generated logins, development settings) to ``.local/stack.env``; every ``gradesync`` command
started in that directory, or below it, reads it, so a second terminal needs no variables.

The file holds passwords: mode 0600. A variable set in the environment wins over the file's,
and when REDIS_URL or COACHVIEW_BASE_URL is set to another place than the stack's the file is
not read at all: a command never mixes the stack's Redis with another Coachview, or the
reverse. Nor is it read when it could lead a command astray: a file of another user or that
others may read or write (it is searched for in the directories above too, ``/tmp`` among
them), or one whose stack no longer runs (killed without stopping: its ports may since be
another program's). Only gradesync's own variables are taken from it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, MutableMapping
from pathlib import Path

FILE = Path(".local") / "stack.env"
# The line naming the process that wrote the file: the stack runs as long as it does.
PID = "# pid: "
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
    """The file's gradesync variables; any other line (``LD_PRELOAD=``, ``PATH=``) is left."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, eq, value = line.partition("=")
        if eq and name.startswith(PREFIXES):
            values[name] = value
    return values


def running(path: Path) -> int | None:
    """The id of the live ``gradesync stack up`` that wrote ``path``; ``None``: no file, or
    its stack was killed without removing it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    pid = next((int(n) for x in lines if x.startswith(PID) and (n := x[len(PID) :]).isdigit()), 0)
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        return pid
    return pid


def _unsafe(path: Path) -> str | None:
    """Why a file may not be trusted: another user's, or open to others."""
    info = path.stat()
    if info.st_uid != os.geteuid():
        return "it belongs to another user"
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        return f"its mode {mode:o} lets others read or change it (chmod 600, or stack up anew)"
    return None


def write(path: Path, environ: Mapping[str, str], pid: int | None = None) -> None:
    """The stack's variables, readable by its owner only (they include the console login),
    and the stack's process id (``pid``, this process by default)."""
    chosen = {k: v for k, v in sorted(environ.items()) if k.startswith(PREFIXES) and "\n" not in v}
    text = (
        "# written by `gradesync stack up`; removed when it stops\n"
        f"{PID}{os.getpid() if pid is None else pid}\n"
        + "".join(f"{k}={v}\n" for k, v in chosen.items())
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
    if (unsafe := _unsafe(path)) is not None:
        return f"not using {path}: {unsafe}"
    if running(path) is None:
        return (
            f"not using {path}: the stack that wrote it is not running (killed without "
            "stopping?); `gradesync stack up` writes a new one"
        )
    values = read(path)
    elsewhere = [n for n in WHERE if environ.get(n) and environ[n] != values.get(n)]
    if elsewhere:
        return f"not using {path}: {' and '.join(elsewhere)} set here point(s) elsewhere"
    for name, value in values.items():
        if not environ.get(name):  # empty counts as unset, as in Settings
            environ[name] = value
    return f"using the local stack's settings from {path} (variables set here win)"
