"""``gradesync stack up``: the whole system on this machine without Docker.

redis-server (AOF ``everysec``, ``noeviction``, data under ``.local/redis``), the Coachview
simulator seeded with demo data, the ingress, a worker, beat and Flower — each started with the
same command the README documents — until Ctrl-C, which stops them all.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import signal
import socket
import time
from pathlib import Path

import httpx
import redis
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gradesync import stackenv
from gradesync.ledger import Ledger
from gradesync.procs import (
    BIN,
    Proc,
    ProcessDied,
    free_port,
    start_beat,
    start_redis,
    start_sim,
    start_worker,
    wait_until,
)
from gradesync.settings import get_settings
from gradesync.sources import Installation, Sources

DEMO_SEED = Path(__file__).resolve().parent.parent / "coachview_sim" / "demo-seed.json"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def choose_ports(wanted: dict[str, int]) -> tuple[dict[str, int], list[str]]:
    """Each service's port: the one asked for, or a free one when another program holds it
    (Debian's redis-server package starts its own Redis on 6379), with a note saying so."""
    ports, notes = {}, []
    for name, port in wanted.items():
        if _port_free(port):
            ports[name] = port
        else:
            ports[name] = free_port()
            notes.append(f"port {port} is taken (by another program): {name} uses {ports[name]}")
    return ports, notes


class Interrupted(BaseException):
    """Ctrl-C (or SIGTERM) while the stack was still starting. A BaseException, as
    KeyboardInterrupt is: the waits for a service count its errors as "not ready yet"."""


class StackRunning(Exception):
    """Another ``stack up`` runs (or starts) from the same checkout."""


def claim(root: Path) -> int:
    """Hold the checkout's stack lock for as long as this process lives (the kernel drops it
    when the process ends, however it ends); returns its descriptor. A second stack would
    share the first one's ledger directory (two redis-servers on one AOF; ``--fresh`` removing
    it under the first) and, stopping, remove the first one's settings file."""
    (root / ".local").mkdir(exist_ok=True)
    fd = os.open(root / ".local" / "stack.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 20).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise StackRunning(
            f"a stack is already running in {root} (pid {holder}): use it, or stop it with "
            "Ctrl-C in its terminal first"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def earlier_records(ledger: Ledger) -> str | None:
    """A ledger kept from an earlier run beside a simulator that starts anew with the demo
    data: they disagree (the ledger says delivered, the simulator has no such write)."""
    n = sum(ledger.counts().values())
    if not n:
        return None
    return (
        f"the ledger (.local/redis) keeps {n} record(s) from an earlier run, but the simulator "
        "starts anew with the demo data: it lacks their writes, and `gradesync demo` finds its "
        "completions already known. `gradesync stack up --fresh` starts both empty."
    )


def _wait_http(proc: Proc, url: str) -> None:
    def ok() -> bool:
        if not proc.alive():
            raise ProcessDied(f"{proc.name} exited:\n{proc.log()[-2000:]}")
        return httpx.get(url, timeout=1).status_code < 500

    wait_until(ok, timeout=30, interval=0.2)


def _grade_policies(env: dict[str, str]) -> list[str]:
    """Without an LMS API the stack says outright that completions come without fetched grades
    (the worker would otherwise refuse such a completion: lms_api_not_configured)."""
    notes = []
    if not env.get("MOODLE_URL") and not env.get("MOODLE_GRADE_POLICY"):
        env["MOODLE_GRADE_POLICY"] = "completion_only"
        notes.append(
            "no MOODLE_URL: MOODLE_GRADE_POLICY=completion_only (Moodle completions without grades)"
        )
    if not env.get("ANEWSPRING_URL") and not env.get("ANEWSPRING_GRADE_POLICY"):
        env["ANEWSPRING_GRADE_POLICY"] = "event"
        notes.append("no ANEWSPRING_URL: ANEWSPRING_GRADE_POLICY=event (grades from the webhook)")
    return notes


def dev_notes(env: dict[str, str], sources: Sources | None) -> list[str]:
    """What the stack changes for development, and what it means, in ``env``'s terms: today's
    variables, or the installations of a sources file (whose variables are not read)."""
    notes = []
    # The stack delivers into its own simulator, which workers refuse outside development,
    # with webhook secrets set or not (a secret set is still checked on its route).
    env["GRADESYNC_INSECURE_DEV"] = "1"
    if not any(k.startswith("GRADESYNC_WEBHOOK_SECRET_") for k in env):
        if sources is None:
            notes.append("no GRADESYNC_WEBHOOK_SECRET_* set: webhooks are NOT authenticated (dev)")
        else:
            notes.append(
                "no GRADESYNC_WEBHOOK_SECRET_CANONICAL: POST /events accepts unsigned events "
                "naming any installation (dev); each installation's route checks its own secret"
            )
    if sources is None:
        return notes + _grade_policies(env)
    return notes + [_installation_note(inst) for inst in sources.installations]


def _installation_note(inst: Installation) -> str:
    policy = getattr(inst, "grade_policy", "event")
    grades = {
        "fetch": f"grades fetched from {inst.api.url if inst.api else '?'}",
        "event": "grades from the events",
        "completion_only": "completions without grades (completion_only)",
    }[policy]
    return f"{inst.name}: /events/{inst.kind}/{inst.instance}, {grades}" + (
        "" if inst.enabled else ", DISABLED (503)"
    )


def console_access(env: dict[str, str], api_port: int) -> str:
    """Give the console a login (generated unless GRADESYNC_CONSOLE_USERS is set) and a cookie
    secret; returns the line that tells where it is and how to log in."""
    url = f"http://127.0.0.1:{api_port}/console/"
    # Signs the console's session cookie; required unless the stack runs in development mode.
    env.setdefault("GRADESYNC_CONSOLE_SECRET", secrets.token_urlsafe(32))
    if env.get("GRADESYNC_CONSOLE_USERS"):
        return f"Console: {url}  (log in as in GRADESYNC_CONSOLE_USERS)"
    user, password = "gradesync", secrets.token_urlsafe(12)
    env["GRADESYNC_CONSOLE_USERS"] = f"{user}:{password}"
    return f"Console: {url}  (generated login: user {user}, password {password})"


def up(root: Path, wanted: dict[str, int], fresh: bool, console: Console) -> None:
    """``wanted``: the ports asked for, by service (redis, sim, api, flower)."""
    try:
        claim(root)  # held until this process ends
    except StackRunning as exc:
        console.print(Text(str(exc), style="red"), soft_wrap=True)
        raise SystemExit(1) from None
    settings = get_settings()
    ports, moved = choose_ports(wanted)
    for note in moved:  # at once: the start may fail after
        console.print(Text(note, style="yellow"))
    notes: list[str] = []
    workdir = root / ".local"
    if fresh:
        shutil.rmtree(workdir / "redis", ignore_errors=True)
        console.print("--fresh: the ledger in .local/redis was removed")
    workdir.mkdir(exist_ok=True)
    env = dict(os.environ)
    # The stack's own Redis, whatever REDIS_URL said before: the file below tells the others.
    env["REDIS_URL"] = f"redis://127.0.0.1:{ports['redis']}/0"
    env["COACHVIEW_BASE_URL"] = f"http://127.0.0.1:{ports['sim']}"
    env["GRADESYNC_API_URL"] = f"http://127.0.0.1:{ports['api']}"
    env.setdefault("GRADESYNC_LOG_FORMAT", "console")
    notes += dev_notes(env, settings.sources if env.get("GRADESYNC_SOURCES") else None)
    console_line = console_access(env, ports["api"])
    if not env.get("FLOWER_BASIC_AUTH"):
        env["FLOWER_BASIC_AUTH"] = f"gradesync:{secrets.token_urlsafe(9)}"
        notes.append(f"Flower login (generated): {env['FLOWER_BASIC_AUTH']}")
    # This process waits for the worker and beat through Celery, which reads REDIS_URL here.
    os.environ.update(env)
    get_settings.cache_clear()
    env_file = root / stackenv.FILE
    procs: list[Proc] = []
    stop = False
    starting = True

    def on_signal(*_: object) -> None:
        # While starting, at once (a service's start waits up to 30 s); once up, at the loop's
        # next turn, never in the middle of stopping.
        nonlocal stop
        stop = True
        if starting:
            raise Interrupted

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        procs.append(start_redis(ports["redis"], workdir, env))
        with redis.Redis(port=ports["redis"]) as client:
            if (disagree := earlier_records(Ledger(client))) is not None:
                notes.append(disagree)
        procs.append(start_sim(ports["sim"], workdir, env, DEMO_SEED))
        api_args = [str(BIN / "gradesync"), "api", "--port", str(ports["api"])]
        api = Proc("api", api_args, workdir, env)
        procs.append(api)
        _wait_http(api, f"http://127.0.0.1:{ports['api']}/healthz")
        procs.append(start_worker(workdir, env, "worker"))
        procs.append(start_beat(workdir, env))
        flower = Proc(
            "flower",
            [str(BIN / "celery"), "-A", "workers", "flower", f"--port={ports['flower']}"],
            workdir,
            env,
        )
        procs.append(flower)
        _wait_http(flower, f"http://127.0.0.1:{ports['flower']}/healthcheck")
        table = Table("service", "where", "log")
        rows = [
            ("redis", f"{env['REDIS_URL']} (AOF in .local/redis)"),
            ("coachview sim", f"{env['COACHVIEW_BASE_URL']}  (GET /_sim/state)"),
            ("api (ingress)", f"{env['GRADESYNC_API_URL']}  (/openapi.json, /metrics, /console)"),
            ("worker", "celery -A workers worker"),
            ("beat", "celery -A workers beat (RedBeat lock)"),
            ("flower", f"http://127.0.0.1:{ports['flower']}"),
        ]
        for (name, where), proc in zip(rows, procs, strict=True):
            table.add_row(name, where, str(proc.log_path.relative_to(root)))
        console.print(table)
        for note in notes:
            console.print(Text(note, "yellow"))
        console.print(console_line)
        stackenv.write(env_file, env)
        console.print(
            f"Settings for other terminals: {env_file.relative_to(root)} (mode 0600); "
            "gradesync commands started in this directory use it."
        )
        starting = False
        console.print("Try: gradesync demo    — Ctrl-C stops everything.")
        while not stop:
            dead = [p.name for p in procs if not p.alive()]
            if dead:
                gone = f"{', '.join(dead)} exited; stopping (see .local/*.log)"
                console.print(Text(gone, "red"))
                break
            time.sleep(0.5)
    except Interrupted:
        starting = False
        console.print("interrupted while starting: stopping what had started")
        raise SystemExit(130) from None
    except (ProcessDied, TimeoutError) as exc:
        # A service that did not come up: what it said, not a traceback.
        console.print(Text(f"the stack did not start: {exc}", style="red"), soft_wrap=True)
        console.print(f"its logs: {workdir}")
        raise SystemExit(1) from None
    finally:
        starting = False
        env_file.unlink(missing_ok=True)  # a stopped stack's settings would point at nothing
        for proc in reversed(procs):
            proc.stop()
        console.print("stopped.")
