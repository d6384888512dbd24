"""Test-wide setup. Ports are chosen before anything imports gradesync's settings, so the
test process and every process it starts agree on where Redis and the simulator are."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings

from gradesync.procs import free_port

if TYPE_CHECKING:
    from tests.integration.conftest import Stack

# No per-example deadline: on 2 shared cores, or under mutmut's line tracing, an example of a
# millisecond test can take half a second, and a failure then says nothing about the code.
settings.register_profile("gradesync", deadline=None)
settings.load_profile("gradesync")

REDIS_PORT = free_port()
SIM_PORT = free_port()
LMS_PORT = free_port()
API_PORT = free_port()
LMS = f"http://127.0.0.1:{LMS_PORT}"
SECRETS = {
    "canonical": "whsec_" + base64.b64encode(b"canonical-test-secret").decode(),
    "ilias": "whsec_" + base64.b64encode(b"ilias-test-secret").decode(),
    "xapi": "whsec_" + base64.b64encode(b"xapi-test-secret").decode(),
    "moodle": "dev-moodle-token",  # the token in tests/fixtures' Moodle sample
    "anewspring": "anewspring-test-secret",
}
CONSOLE_LOGIN = ("console-test", "console-test-password")
os.environ.update(
    {
        "GRADESYNC_CONSOLE_USERS": ":".join(CONSOLE_LOGIN),
        "GRADESYNC_CONSOLE_SECRET": "console-test-secret-of-at-least-32-characters",
        **{f"GRADESYNC_WEBHOOK_SECRET_{k.upper()}": v for k, v in SECRETS.items()},
        "MOODLE_URL": LMS,
        "MOODLE_TOKEN": "fake-moodle-ws-token",
        "ANEWSPRING_URL": LMS,
        "ANEWSPRING_API_KEY": "fake-anewspring-key",
        "ILIAS_SOAP_URL": f"{LMS}/webservice/soap/server.php",
        "ILIAS_USER": "gradesync",
        "ILIAS_PASSWORD": "fake",
        "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
        "COACHVIEW_BASE_URL": f"http://127.0.0.1:{SIM_PORT}",
        # Workers deliver to the simulator only in development (contract: the tests set it).
        "GRADESYNC_INSECURE_DEV": "1",
        "GRADESYNC_TRANSIENT_BACKOFF_S": "0.1",
        "GRADESYNC_TRANSIENT_BACKOFF_MAX_S": "0.5",
        "GRADESYNC_LOG_LEVEL": "INFO",
        "GRADESYNC_LOG_FORMAT": "json",
        # Small numbers so budget and sweep behaviour shows within seconds.
        "COACHVIEW_BUDGET_RESERVE": "3",
        "GRADESYNC_SWEEP_INTERVAL_S": "1",
    }
)


def open_ingress_settings() -> Any:
    """Settings with no webhook secrets and GRADESYNC_INSECURE_DEV=1: requests reach validation
    (for fuzzing the ingress; the session's own secrets stay in the environment)."""
    from gradesync.settings import Settings

    none = {f"GRADESYNC_WEBHOOK_SECRET_{k.upper()}": None for k in SECRETS}
    return Settings(GRADESYNC_INSECURE_DEV="1", **none)


# Everything under these runs real processes: `-m integration` selects it, `-m "not integration"`
# leaves it out. (A `pytestmark` in a conftest.py marks nothing; this hook does.)
_REAL_PROCESS_DIRS = tuple(Path(__file__).resolve().parent / d for d in ("integration", "faults"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.path.is_relative_to(d) for d in _REAL_PROCESS_DIRS):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the whole session, integration and fault tests alike (see run_stack)."""
    from tests.integration.conftest import run_stack  # deferred: it imports this module

    yield from run_stack(tmp_path_factory)


@pytest.fixture
def clean(stack: Stack) -> Stack:
    stack.reset()
    return stack
