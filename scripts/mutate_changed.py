"""Mutation-test the modules a change touches (README "Mutation testing").

Runs mutmut on every module of ``[tool.mutmut] only_mutate`` that differs from the merge base
with main (committed, staged, unstaged or new), prints each module's score, and fails while a
mutant survives that ``scripts/equivalent-mutants.txt`` does not list. A changed module outside
``only_mutate`` is named, so a new module that decides something is added there, not missed.

    .venv/bin/python scripts/mutate_changed.py                # against git merge-base HEAD main
    .venv/bin/python scripts/mutate_changed.py --base v1.2    # against another ref
    .venv/bin/python scripts/mutate_changed.py --max-children 1

Not part of .ci/run (a module's run takes minutes); run it before every stop.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "scripts" / "equivalent-mutants.txt"
# mutmut 3 names a mutant <module>.x_<function>__mutmut_<n>, or <module>.xǁ<Class>ǁ<method>__….
_MUTANT = re.compile(r"^\s*(?P<name>(?P<module>[\w.]+)\.x[_ǁ]\S+__mutmut_\d+): (?P<status>.+)$")
# Sources a change may touch that mutation testing does not concern.
_NOT_CODE = ("tests/", "benchmarks/", "scripts/", "coachview_sim/")


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def merge_base(ref: str | None) -> str:
    """The merge base with ``ref``, else with main (a local branch or, in a fresh clone of
    another branch, origin/main)."""
    for candidate in [ref] if ref else ["main", "origin/main"]:
        try:
            return git("merge-base", "HEAD", candidate).strip()
        except subprocess.CalledProcessError:
            continue
    sys.exit(f"mutate_changed: no merge base with {ref or 'main or origin/main'}")


def changed_files(base: str) -> set[str]:
    """Every file that differs from ``base`` in the work tree, and every new untracked file."""
    diff = git("diff", "--name-only", "--no-renames", base).split()
    new = git("ls-files", "--others", "--exclude-standard").split()
    return {path for path in [*diff, *new] if (ROOT / path).is_file()}


def only_mutate() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["mutmut"]["only_mutate"])


def module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def equivalent() -> set[str]:
    """The mutants listed as equivalent (the first word of each line; ``#`` starts a note)."""
    names = set()
    for line in EQUIVALENT.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            names.add(text.split()[0])
    return names


def results(mutmut: Path) -> dict[str, str]:
    """Every mutant of the last runs and its status (``killed``, ``survived``, ``no tests``…)."""
    out = subprocess.run(
        [str(mutmut), "results", "--all", "true"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {m["name"]: m["status"].strip() for m in map(_MUTANT.match, out.splitlines()) if m}


def report(modules: list[str], statuses: dict[str, str], known: set[str]) -> list[str]:
    """Print each module's score; return the survivors not listed as equivalent."""
    unexplained: list[str] = []
    print(f"{'module':<40} {'mutants':>7} {'killed':>6} {'equiv.':>6}  score")
    for module in modules:
        mine = {n: s for n, s in statuses.items() if n.startswith(f"{module}.x")}
        counts = Counter(mine.values())
        listed = sum(1 for n, s in mine.items() if s != "killed" and n in known)
        total, killed = len(mine), counts["killed"]
        score = f"{100 * killed / total:.1f} %" if total else "no mutants"
        print(f"{module:<40} {total:>7} {killed:>6} {listed:>6}  {score}")
        unexplained += sorted(
            f"{n}: {s}" for n, s in mine.items() if s != "killed" and n not in known
        )
    return unexplained


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help="the ref to compare with (default: main)")
    parser.add_argument("--max-children", type=int, default=1, help="mutmut's parallelism")
    args = parser.parse_args()

    base = merge_base(args.base)
    changed = changed_files(base)
    mutated = only_mutate()
    modules = [module_name(p) for p in mutated if p in changed]
    left_out = sorted(
        p for p in changed if p.endswith(".py") and p not in mutated and not p.startswith(_NOT_CODE)
    )
    if left_out:
        print("changed, not mutation-tested (add to only_mutate if it decides something):")
        print("".join(f"  {p}\n" for p in left_out), end="")
    if not modules:
        print(f"no module of only_mutate changed since {base[:12]}")
        return 0

    mutmut = Path(sys.executable).parent / "mutmut"
    run = [str(mutmut), "run", "--max-children", str(args.max_children)]
    print(f"mutating {', '.join(modules)} (changed since {base[:12]})", flush=True)
    # mutmut 3 runs the selected mutants only, but needs the whole selection green first.
    done = subprocess.run(["nice", "-n", "19", *run, *(f"{m}.*" for m in modules)], cwd=ROOT)
    if done.returncode != 0:
        print("mutate_changed: mutmut failed (the selected unit tests must pass unmutated first)")
        return done.returncode
    unexplained = report(modules, results(mutmut), equivalent())
    if unexplained:
        print("survivors (kill each with a test, or list it with why in")
        print(f"{EQUIVALENT.relative_to(ROOT)} and the README):")
        print("".join(f"  {line}\n" for line in unexplained), end="")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
