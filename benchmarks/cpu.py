"""CPU time per process tree, from /proc: where a benchmark phase spends the machine's cores.

On two cores the simulator, Redis, the workers and the driver all compete; throughput alone
cannot say which of them a change made cheaper.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; everything after its ")" is space-separated.
    return text[text.rindex(")") + 2 :].split()


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def tree_seconds(pid: int, descendants: bool = True) -> float:
    """User + system CPU seconds of ``pid`` and (unless told not to) every descendant."""
    tree = _children() if descendants else {}
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        fields = _stat(current)
        if fields is not None:
            # utime, stime, then cutime, cstime of reaped children (fields 14-17 of stat).
            total += sum(int(v) for v in fields[11 : 15 if descendants else 13]) / _TICK
        todo += tree.get(current, [])
    return total


def snapshot(trees: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process tree, and of this process alone ("driver")."""
    seconds = {name: tree_seconds(pid) for name, pid in trees.items()}
    seconds["driver"] = tree_seconds(os.getpid(), descendants=False)
    return seconds


def report(before: dict[str, float], after: dict[str, float], n: int) -> str:
    """``name 1.2 ms`` per completion for each process tree, and their sum."""
    per = {name: (after[name] - before[name]) * 1000 / n for name in before}
    parts = [f"{name} {ms:.1f}" for name, ms in per.items()]
    return f"{' · '.join(parts)} · total {sum(per.values()):.1f} ms"
