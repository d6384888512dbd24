"""A previous webhook secret with its expiry date (issue 25 item 10): the sources file's rules,
which secrets count on a given day, and what doctor shows."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gradesync import sources_file
from gradesync.doctor import lms_checks
from gradesync.settings import Settings
from tests.unit.test_sources import write

ENV = {"NEW": "a-moodle-token-new-01", "OLD": "a-moodle-token-old-01"}
MOODLE = {"kind": "moodle", "instance": "lms", "grade_policy": "completion_only"}


def load(tmp_path: Path, **entry: Any) -> Any:
    return sources_file.load(write(tmp_path, [MOODLE | entry]), ENV).installations[0]


def test_a_previous_secret_counts_through_its_date_and_not_after(tmp_path: Path) -> None:
    inst = load(
        tmp_path,
        secret_env="NEW",
        previous_secret_env="OLD",
        previous_secret_expires="2031-03-01",
    )
    assert inst.webhook_secrets(date(2031, 3, 1)) == [ENV["NEW"], ENV["OLD"]]
    assert inst.webhook_secrets(date(2031, 3, 2)) == [ENV["NEW"]]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"previous_secret_env": "OLD"}, "previous_secret_expires"),
        ({"previous_secret_expires": "2031-03-01"}, "previous_secret_expires"),
        ({"previous_secret_env": "UNSET", "previous_secret_expires": "2031-03-01"}, "UNSET"),
    ],
)
def test_a_previous_secret_needs_its_date_and_its_variable(
    tmp_path: Path, entry: dict[str, Any], problem: str
) -> None:
    with pytest.raises(sources_file.SourcesError, match=problem):
        load(tmp_path, secret_env="NEW", **entry)


def test_doctor_shows_when_the_previous_secret_expires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        [
            MOODLE
            | {
                "secret_env": "NEW",
                "previous_secret_env": "OLD",
                "previous_secret_expires": "2031-03-01",
            }
        ],
    )
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    s = Settings(GRADESYNC_SOURCES=path)

    def shown(today: date) -> Any:
        checks = {c.name: c for c in lms_checks.secrets(s, {}, today)}
        return checks["previous secret moodle/lms"]

    far = shown(date(2031, 1, 1))
    assert far.status == "ok" and "OLD accepted through 2031-03-01" in far.detail
    assert shown(date(2031, 2, 27)).status == "warn"  # a week or less: move the senders over
    gone = shown(date(2031, 3, 2))
    assert gone.status == "warn" and "expired on 2031-03-01" in gone.detail
