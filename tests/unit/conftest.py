"""Unit-test fixtures shared by more than one file."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest


@pytest.fixture
def far_host_zone() -> Iterator[None]:
    """The host's local time zone set far from UTC (UTC+14), so a result that silently used the
    host's zone instead of UTC or the configured one differs from the right answer; CI hosts
    run in UTC, where the two coincide."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "Pacific/Kiritimati")
        time.tzset()
        yield
    time.tzset()
