"""``gradesync reconcile``'s bad input: a usage error (exit 2) naming the option."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gradesync.cli import app


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--installation", "moodle"], "KIND/INSTANCE"),
        (["--installation", "ilias/default"], "is not reconciled"),
        (["--installation", "moodle/nope"], "no moodle installation"),
        (["--installation", "moodle/default", "--since", "yesterday"], "--since"),
        (["--installation", "moodle/default", "--since", "2999-01-01"], "future"),
    ],
)
def test_reconcile_refuses_bad_input_naming_the_option(args: list[str], named: str) -> None:
    result = CliRunner().invoke(app, ["reconcile", *args])
    assert result.exit_code == 2 and named in result.output, result.output
