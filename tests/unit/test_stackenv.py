"""The local stack's settings file: found from below the directory, 0600, and never mixed with
variables that point elsewhere; the simulator's data commands build the right seed fragments."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from gradesync import simdata, stackenv
from gradesync.event import CompletionEvent
from gradesync.ledger import Ledger, utcnow
from gradesync.stack import choose_ports, earlier_records

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

STACK = {
    "REDIS_URL": "redis://127.0.0.1:6400/0",
    "COACHVIEW_BASE_URL": "http://127.0.0.1:8101",
    "GRADESYNC_CONSOLE_USERS": "gradesync:generated-password",
    "PATH": "/usr/bin",
}


def written(tmp_path: Path) -> Path:
    (tmp_path / ".local").mkdir()
    path = tmp_path / stackenv.FILE
    stackenv.write(path, STACK)
    return path


def test_the_file_is_private_and_holds_only_gradesync_variables(tmp_path: Path) -> None:
    path = written(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stackenv.read(path) == {k: v for k, v in STACK.items() if k != "PATH"}


def test_a_command_below_the_directory_gets_the_unset_variables(tmp_path: Path) -> None:
    written(tmp_path)
    below = tmp_path / "a" / "b"
    below.mkdir(parents=True)
    environ = {"GRADESYNC_CONSOLE_USERS": "mine:my-own-password", "REDIS_URL": ""}
    told = stackenv.apply(environ, below)
    assert told is not None and "using" in told
    assert environ["REDIS_URL"] == STACK["REDIS_URL"]  # empty counts as unset
    assert environ["GRADESYNC_CONSOLE_USERS"] == "mine:my-own-password"  # set here wins


@pytest.mark.parametrize("name", stackenv.WHERE)
def test_a_variable_pointing_elsewhere_keeps_the_whole_file_out(tmp_path: Path, name: str) -> None:
    written(tmp_path)
    environ = {name: "redis://elsewhere:6379/0"}
    told = stackenv.apply(environ, tmp_path)
    assert told is not None and "not using" in told and name in told
    assert environ == {name: "redis://elsewhere:6379/0"}


def test_no_file_no_change(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    assert stackenv.apply(environ, tmp_path) is None and environ == {}


def test_a_taken_port_is_replaced_and_said() -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        ports, notes = choose_ports({"redis": taken})
    assert ports["redis"] != taken and notes == [
        f"port {taken} is taken (by another program): redis uses {ports['redis']}"
    ]


SIM: dict[str, Any] = {
    "persons": [{"id": 1001, "externId": "57", "firstName": "Anna", "lastName": "de Vries"}],
    "trainings": [
        {
            "id": 501,
            "name": "VCA Basis",
            "components": [
                {"id": 9001, "name": "E-learning VCA", "elearningCourseId": "12"},
                {"id": 9002, "name": "Examen VCA", "elearningCourseId": None},
            ],
        }
    ],
    "enrolments": [{"id": 7001, "personId": 1001, "trainingId": 501}],
}


def test_the_simulator_data_commands_build_seed_fragments() -> None:
    assert simdata.add_person(SIM, "4242", "Daan", "Smit") == {
        "persons": [{"id": 1002, "externId": "4242", "firstName": "Daan", "lastName": "Smit"}]
    }
    assert simdata.enrol(SIM, "57", 501) == {
        "enrolments": [{"id": 7002, "personId": 1001, "trainingId": 501}]
    }
    training = simdata.set_course(SIM, 9002, "999")["trainings"][0]
    assert [c.get("elearningCourseId") for c in training["components"]] == ["12", "999"]
    assert SIM["trainings"][0]["components"][1]["elearningCourseId"] is None  # not changed
    with pytest.raises(simdata.SimDataError, match="exists already"):
        simdata.add_person(SIM, "57", "", "")
    with pytest.raises(simdata.SimDataError, match="no person has external id"):
        simdata.enrol(SIM, "4242", 501)
    with pytest.raises(simdata.SimDataError, match="no training 9"):
        simdata.enrol(SIM, "57", 9)
    with pytest.raises(simdata.SimDataError, match="no component 1"):
        simdata.set_course(SIM, 1, "x")
    assert any("e-learning code 12" in line for line in simdata.describe(SIM))


def test_a_kept_ledger_beside_a_new_simulator_is_said_and_fresh_is_named() -> None:
    ledger = Ledger(fakeredis.FakeRedis())
    assert earlier_records(ledger) is None
    event = CompletionEvent.model_validate(json.loads((FIXTURES / "canonical.json").read_text()))
    ledger.admit(event, utcnow())
    said = earlier_records(ledger)
    assert said is not None and "1 record(s)" in said and "stack up --fresh" in said


def test_demo_without_an_ingress_says_so_and_exits_2() -> None:
    from rich.console import Console

    from gradesync.demo import run
    from gradesync.procs import free_port
    from gradesync.settings import Settings

    out = Console(record=True, width=200)
    ledger = Ledger(fakeredis.FakeRedis())
    closed = f"http://127.0.0.1:{free_port()}"
    assert run(closed, closed, ledger, Settings(GRADESYNC_INSECURE_DEV="1"), out) == 2
    said = out.export_text()
    assert "did not answer" in said and "gradesync stack up" in said


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_killed_stacks_file_is_not_used(tmp_path: Path) -> None:
    """A stack killed with SIGKILL leaves its file behind; its ports may since belong to
    another program's Redis, so a command must not follow it there."""
    (tmp_path / ".local").mkdir()
    path = tmp_path / stackenv.FILE
    stackenv.write(path, STACK, pid=_dead_pid())
    environ: dict[str, str] = {}
    told = stackenv.apply(environ, tmp_path)
    assert told is not None and "not using" in told and "not running" in told
    assert environ == {}


def test_a_running_stack_is_found_by_its_file(tmp_path: Path) -> None:
    import os

    assert stackenv.running(tmp_path / stackenv.FILE) is None  # no file
    path = written(tmp_path)
    assert stackenv.running(path) == os.getpid()
    stackenv.write(path, STACK, pid=_dead_pid())
    assert stackenv.running(path) is None


@pytest.mark.parametrize("mode", [0o644, 0o620, 0o606])
def test_a_file_others_can_read_or_write_is_not_used(tmp_path: Path, mode: int) -> None:
    """Someone else who can write the file could point REDIS_URL at their own Redis."""
    path = written(tmp_path)
    path.chmod(mode)
    environ: dict[str, str] = {}
    told = stackenv.apply(environ, tmp_path)
    assert told is not None and "not using" in told and oct(mode)[2:] in told
    assert environ == {}


def test_only_gradesync_variables_are_taken_from_the_file(tmp_path: Path) -> None:
    """A hand-edited or hostile file cannot set LD_PRELOAD, PATH or PYTHONPATH for a command
    (and the processes it starts)."""
    path = written(tmp_path)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("LD_PRELOAD=/tmp/evil.so\nPYTHONPATH=/tmp\nPATH=/tmp\n")
    environ: dict[str, str] = {}
    stackenv.apply(environ, tmp_path)
    assert environ == {k: v for k, v in STACK.items() if k != "PATH"}


def test_a_file_of_another_user_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``.local/stack.env`` in a directory above (``/tmp/.local``) may be anyone's."""
    import os

    written(tmp_path)
    me = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: me + 1)
    environ: dict[str, str] = {}
    told = stackenv.apply(environ, tmp_path)
    assert told is not None and "not using" in told and "another user" in told
    assert environ == {}


def test_a_second_stack_in_the_same_checkout_is_refused(tmp_path: Path) -> None:
    """Two stacks would run two redis-servers on one .local/redis (one AOF), ``--fresh`` would
    remove the running one's ledger, and the second, stopping, would remove the first one's
    settings file. Refused from the start: the first may still be starting (no file yet)."""
    import os

    from gradesync.stack import StackRunning, claim

    held = claim(tmp_path)
    with pytest.raises(StackRunning, match=f"already running .*pid {os.getpid()}.*Ctrl-C"):
        claim(tmp_path)
    os.close(held)  # the first stack stopped, or was killed: the lock goes with it
    os.close(claim(tmp_path))
