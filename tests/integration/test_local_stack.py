"""`gradesync stack up` beside another Redis on its default port (what Debian's redis-server
package leaves running), driven from a second process that has none of the stack's variables.

The other Redis stands on a free port given to `stack up` as its default (``--redis-port``):
the test never touches a server on 6379 that another program may own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gradesync import stackenv
from gradesync.procs import BIN, ProcessDied, free_port, start_redis, wait_until


def bare_env() -> dict[str, str]:
    """This machine's environment without any variable gradesync reads: a new terminal."""
    return {k: v for k, v in os.environ.items() if not k.startswith(stackenv.PREFIXES)}


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "gradesync"), *args],
        cwd=cwd,
        env=env or bare_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def other_redis(tmp_path: Path) -> Iterator[int]:
    proc = start_redis(port := free_port(), tmp_path / "other", bare_env(), name="other")
    client = redis.Redis(port=port)
    client.set("belongs-to", "another program")
    try:
        yield port
    finally:
        client.close()
        proc.stop()


@pytest.fixture
def taken_api_port() -> Iterator[int]:
    """A port some other program listens on: the ingress's default, for this test."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.fixture
def stack_dir(tmp_path: Path, other_redis: int, taken_api_port: int) -> Iterator[Path]:
    home = tmp_path / "checkout"
    home.mkdir()
    args = [
        str(BIN / "gradesync"),
        "stack",
        "up",
        f"--redis-port={other_redis}",
        f"--api-port={taken_api_port}",
        f"--sim-port={free_port()}",
        f"--flower-port={free_port()}",
    ]
    proc = subprocess.Popen(
        args,
        cwd=home,
        env=bare_env(),
        stdout=(home / "stack.out").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise ProcessDied((home / "stack.out").read_text())
            return (home / stackenv.FILE).is_file()

        wait_until(ready, timeout=120, interval=0.5)
        yield home
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_stack_up_beside_another_redis_serves_demo_and_status_from_a_bare_terminal(
    stack_dir: Path, other_redis: int, taken_api_port: int
) -> None:
    said = (stack_dir / "stack.out").read_text()
    assert f"port {other_redis} is taken" in said
    assert f"port {taken_api_port} is taken" in said
    env_file = stack_dir / stackenv.FILE
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600  # it holds the console's password
    values = stackenv.read(env_file)
    assert values["REDIS_URL"] != f"redis://127.0.0.1:{other_redis}/0"

    sub = stack_dir / "some" / "folder"
    sub.mkdir(parents=True)
    demo = run(sub, "demo")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "using the local stack's settings" in demo.stderr
    assert "Traceback" not in demo.stdout + demo.stderr
    assert demo.stdout.count("delivered") >= 5
    assert "approved None" not in demo.stdout

    again = run(sub, "demo")  # the same samples: recorded already, said so
    assert again.returncode == 0 and "already recorded" in again.stdout, again.stdout

    status = run(stack_dir, "status", "--json")
    assert status.returncode == 0, status.stderr
    counts = json.loads(status.stdout)
    assert counts["delivered"] >= 5 and counts["unresolved"] == 1
    # The commands that failed in a bare terminal before: doctor and diagnose.
    doctor = run(stack_dir, "doctor", "--json")
    assert json.loads(doctor.stdout)["healthy"], doctor.stdout
    stuck = json.loads(run(stack_dir, "list", "--state", "unresolved", "--json").stdout)[0]
    diagnosed = run(stack_dir, "diagnose", stuck["id"], "--json")
    assert diagnosed.returncode == 1, diagnosed.stdout + diagnosed.stderr  # missing, not refused
    assert "unknown_person" in diagnosed.stdout
    # Nothing reached the other program's Redis.
    other = redis.Redis(port=other_redis)
    assert other.keys("*") == [b"belongs-to"]
    other.close()

    # A second `stack up` in the same checkout would share .local/redis: refused, and the
    # running stack's settings file stays.
    second = run(stack_dir, "stack", "up", f"--redis-port={free_port()}")
    assert second.returncode == 1 and "already running" in second.stdout, second.stdout
    assert env_file.is_file()

    # A terminal whose REDIS_URL names another Redis is not given the stack's settings.
    elsewhere = bare_env() | {"REDIS_URL": f"redis://127.0.0.1:{other_redis}/0"}
    status = run(stack_dir, "status", "--json", env=elsewhere)
    assert "not using" in status.stderr and "REDIS_URL" in status.stderr
    assert json.loads(status.stdout)["delivered"] == 0


def wait_stopped(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_ctrl_c_while_the_stack_starts_stops_it_at_once(tmp_path: Path) -> None:
    """Ctrl-C was held until every service had started (half a minute on a busy machine),
    then the stack printed "Try: gradesync demo" and its settings file, and only then stopped."""
    args = [str(BIN / "gradesync"), "stack", "up"]
    args += [f"--{name}-port={free_port()}" for name in ("redis", "sim", "api", "flower")]
    out = tmp_path / "stack.out"
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=bare_env(), stdout=out.open("wb"), stderr=subprocess.STDOUT
    )
    try:
        wait_until(lambda: (tmp_path / ".local" / "sim.log").is_file(), timeout=60, interval=0.1)
        proc.send_signal(signal.SIGINT)
        stopped_in_time = wait_stopped(proc, 20)
    finally:
        if not wait_stopped(proc, 90):  # it stops its services itself, however late
            proc.kill()
            proc.wait(10)
    assert stopped_in_time
    said = out.read_text()
    assert "Try: gradesync demo" not in said and "interrupted" in said, said
    assert not (tmp_path / stackenv.FILE).exists()
    assert proc.returncode != 0
