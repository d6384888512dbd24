"""Real processes on this machine: redis-server, the simulator, celery workers and beat.

Used by the integration tests, the benchmarks and `gradesync stack`. Every process gets its
own port and directory, and is stopped (then killed) at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcessDied(RuntimeError):
    """A process we wait for has exited: waiting longer cannot help."""


def wait_until(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; errors count as "not yet"."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except ProcessDied:
            raise
        except Exception as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s (last: {last!r})")


class Proc:
    def __init__(self, name: str, args: list[str], workdir: Path, env: dict[str, str]):
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        """Kill the whole process group at once, as an OOM killer or power cut would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        self._log.close()


def ready(proc: Proc, check: Callable[[], Any], timeout: float, interval: float = 0.05) -> Proc:
    """``proc`` once ``check`` holds; a start that times out or is interrupted (Ctrl-C during
    `gradesync stack up`) stops the process it began, which no caller holds yet."""
    try:
        wait_until(check, timeout=timeout, interval=interval)
    except BaseException:
        proc.stop()
        raise
    return proc


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    return found


# gradesync's Redis: append-only file, fsync every second, never evict (README "Guarantees").
DURABLE = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "save": "",
    "maxmemory-policy": "noeviction",
}


def start_redis(
    port: int,
    workdir: Path,
    env: dict[str, str],
    config: dict[str, str] | None = None,
    extra: tuple[str, ...] = (),
    name: str = "redis",
) -> Proc:
    """A redis-server on ``port``, configured as gradesync needs it unless ``config`` says
    otherwise (tests of what a badly configured Redis looks like)."""
    data = workdir / name
    data.mkdir(parents=True, exist_ok=True)
    settings = DURABLE | (config or {})
    options = [arg for key, value in settings.items() for arg in (f"--{key}", value)]
    proc = Proc(
        name,
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            *options,
            *extra,
        ],
        workdir,
        env,
    )
    client = redis.Redis(port=port)

    def ours() -> bool:
        # Another server already on the port answers a ping too (a second test stack once
        # "started" that way and ran beside the first): only this process's answer counts.
        if not proc.alive():
            raise ProcessDied(f"{name} exited: {proc.log()[-500:]}")
        if client.info("server").get("process_id") != proc.popen.pid:
            return False
        # INFO answers while the AOF still loads; every data command gets BusyLoadingError.
        return client.info("persistence").get("loading") == 0

    try:
        return ready(proc, ours, timeout=10)
    finally:
        client.close()


def start_sim(port: int, workdir: Path, env: dict[str, str], seed: Path | None = None) -> Proc:
    args = [str(BIN / "gradesync"), "sim", "--port", str(port)]
    if seed is not None:
        args += ["--seed", str(seed)]
    proc = Proc("sim", args, workdir, env)

    return ready(
        proc, lambda: httpx.get(f"http://127.0.0.1:{port}/_sim/state").status_code == 200, 20
    )


def start_worker(
    workdir: Path,
    env: dict[str, str],
    name: str = "w1",
    concurrency: int = 2,
    extra: tuple[str, ...] = (),
) -> Proc:

    proc = Proc(
        f"worker-{name}",
        [
            str(BIN / "celery"),
            "-A",
            "workers",
            "worker",
            "-n",
            f"{name}@%h",
            "-c",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            *extra,
        ],
        workdir,
        env,
    )
    from workers import app  # deferred: Celery reads REDIS_URL when imported; callers set it first

    node = f"{name}@{socket.gethostname()}"

    def answers() -> bool:
        if not proc.alive():
            raise ProcessDied(f"worker died at start:\n{proc.log()[-3000:]}")

        return bool(app.control.ping(destination=[node], timeout=0.5))

    return ready(proc, answers, timeout=60, interval=0.2)


def start_beat(workdir: Path, env: dict[str, str], name: str = "beat") -> Proc:
    proc = Proc(
        name,
        [str(BIN / "celery"), "-A", "workers", "beat", "--loglevel", "INFO", "--max-interval", "1"],
        workdir,
        env,
    )
    from workers.app import app  # deferred, as in start_worker

    client = redis.Redis.from_url(env.get("REDIS_URL", "redis://localhost:6379/0"))

    def holds_lock() -> bool:
        if not proc.alive():
            raise ProcessDied(f"beat died at start:\n{proc.log()[-3000:]}")
        return bool(client.exists(app.conf.redbeat_lock_key))

    try:
        return ready(proc, holds_lock, timeout=30, interval=0.1)
    finally:
        client.close()


def start_flower(port: int, workdir: Path, env: dict[str, str]) -> Proc:
    """Flower, reading flowerconfig.py from the project root (its basic auth comes from ``env``)."""
    proc = Proc(
        "flower",
        [str(BIN / "celery"), "-A", "workers", "flower", f"--port={port}", "--address=127.0.0.1"],
        workdir,
        env,
    )

    def healthy() -> bool:
        if not proc.alive():
            raise ProcessDied(f"flower died at start:\n{proc.log()[-3000:]}")
        return httpx.get(f"http://127.0.0.1:{port}/healthcheck").is_success

    return ready(proc, healthy, timeout=30, interval=0.2)


@contextlib.contextmanager
def running(procs: list[Proc]) -> Iterator[list[Proc]]:
    try:
        yield procs
    finally:
        for p in reversed(procs):
            p.stop()
