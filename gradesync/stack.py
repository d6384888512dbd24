"""``gradesync stack up``: the whole system on this machine without Docker.

redis-server (AOF ``everysec``, ``noeviction``, data under ``.local/redis``), the Coachview
simulator seeded with demo data, the ingress, a worker, beat and Flower — each started with the
same command the README documents — until Ctrl-C, which stops them all.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
from rich.console import Console
from rich.table import Table

from gradesync.procs import (
    BIN,
    Proc,
    ProcessDied,
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


def up(root: Path, api_port: int, sim_port: int, flower_port: int, console: Console) -> None:
    settings = get_settings()
    redis_port = urlparse(settings.redis_url).port or 6379
    busy = [p for p in (redis_port, sim_port, api_port, flower_port) if not _port_free(p)]
    if busy:
        raise SystemExit(f"port(s) already in use: {', '.join(map(str, busy))}")
    workdir = root / ".local"
    workdir.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("COACHVIEW_BASE_URL", f"http://127.0.0.1:{sim_port}")

    env.setdefault("GRADESYNC_LOG_FORMAT", "console")
    notes = dev_notes(env, settings.sources if env.get("GRADESYNC_SOURCES") else None)
    console_line = console_access(env, api_port)
    if not env.get("FLOWER_BASIC_AUTH"):
        env["FLOWER_BASIC_AUTH"] = f"gradesync:{secrets.token_urlsafe(9)}"
        notes.append(f"Flower login (generated): {env['FLOWER_BASIC_AUTH']}")
    procs: list[Proc] = []
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        procs.append(start_redis(redis_port, workdir, env))
        procs.append(start_sim(sim_port, workdir, env, DEMO_SEED))
        api = Proc("api", [str(BIN / "gradesync"), "api", "--port", str(api_port)], workdir, env)
        procs.append(api)
        _wait_http(api, f"http://127.0.0.1:{api_port}/healthz")
        procs.append(start_worker(workdir, env, "worker"))
        procs.append(start_beat(workdir, env))
        flower = Proc(
            "flower",
            [str(BIN / "celery"), "-A", "workers", "flower", f"--port={flower_port}"],
            workdir,
            env,
        )
        procs.append(flower)
        _wait_http(flower, f"http://127.0.0.1:{flower_port}/healthcheck")
        table = Table("service", "where", "log")
        rows = [
            ("redis", f"redis://127.0.0.1:{redis_port} (AOF in .local/redis)"),
            ("coachview sim", f"http://127.0.0.1:{sim_port}  (GET /_sim/state)"),
            ("api (ingress)", f"http://127.0.0.1:{api_port}  (/docs, /metrics, /console)"),
            ("worker", "celery -A workers worker"),
            ("beat", "celery -A workers beat (RedBeat lock)"),
            ("flower", f"http://127.0.0.1:{flower_port}"),
        ]
        for (name, where), proc in zip(rows, procs, strict=True):
            table.add_row(name, where, str(proc.log_path.relative_to(root)))
        console.print(table)
        for note in notes:
            console.print(f"[yellow]{note}[/yellow]")
        console.print(console_line)
        console.print("Try: gradesync demo    — Ctrl-C stops everything.")
        while not stop:
            dead = [p.name for p in procs if not p.alive()]
            if dead:
                console.print(f"[red]{', '.join(dead)} exited; stopping (see .local/*.log)[/red]")
                break
            time.sleep(0.5)
    finally:
        for proc in reversed(procs):
            proc.stop()
        console.print("stopped.")
