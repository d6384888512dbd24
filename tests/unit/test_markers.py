"""`-m integration` selects the tests that run real processes, and only those."""

from __future__ import annotations

import subprocess
import sys

from gradesync.procs import ROOT

SAMPLE = ["tests/integration/test_stack_hygiene.py", "tests/faults/test_long_waits.py"]
UNIT = "tests/unit/test_policy.py"


def collected(marker: str) -> str:
    args = ["-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", "-m", marker]
    done = subprocess.run(
        [sys.executable, *args, *SAMPLE, UNIT], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout


def test_the_integration_marker_selects_integration_and_fault_tests_only() -> None:
    selected, rest = collected("integration"), collected("not integration")
    for path in SAMPLE:
        assert path in selected and path not in rest
    assert UNIT not in selected and UNIT in rest
