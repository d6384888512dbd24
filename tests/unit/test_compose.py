"""docker-compose.yml, checked without Docker: services, commands, health, persistence."""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def test_the_six_services_with_healthchecks() -> None:
    assert set(SERVICES) == {"redis", "api", "worker", "beat", "flower", "coachview-sim"}
    for name, service in SERVICES.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_redis_persists_with_aof_and_never_evicts() -> None:
    redis = SERVICES["redis"]
    command = redis["command"]
    for flag in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"):
        assert flag in command
    volume = redis["volumes"][0].split(":")[0]
    assert volume in COMPOSE["volumes"]  # a named volume, not the container's layer


def test_every_command_is_a_real_entry_point() -> None:
    import typer.main

    from gradesync.cli import app as cli

    commands = {c.name for c in typer.main.get_command(cli).commands.values()}  # type: ignore[attr-defined]
    for name, service in SERVICES.items():
        if name == "redis":
            continue
        argv = shlex.split(service["command"])
        if argv[0] == "gradesync":
            assert "gradesync" in SCRIPTS and argv[1] in commands, name
        else:
            assert argv[:3] == ["celery", "-A", "workers"], name
            assert argv[3] in {"worker", "beat", "flower"}, name
            assert hasattr(importlib.import_module("workers"), "app")
        seed = [a for a in argv if a.endswith(".json")]
        for path in seed:
            assert (ROOT / path).is_file(), path


def test_secrets_come_from_env_file_and_the_example_has_none() -> None:
    for name, service in SERVICES.items():
        if name != "redis":
            assert service["env_file"] == ".env", name
    example = (ROOT / ".env.example").read_text()
    assert "change-me" in example
    assert not re.search(r"SECRET_\w+=(?!whsec_change-me|change-me|gradesync-dev)\S", example)
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_image_runs_as_non_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.M)
    assert "slim" in dockerfile.splitlines()[1]


def test_flower_refuses_to_start_without_auth(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("FLOWER_BASIC_AUTH", "GRADESYNC_INSECURE_DEV")
    }
    run = subprocess.run(
        [sys.executable, str(ROOT / "flowerconfig.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2 and "FLOWER_BASIC_AUTH" in run.stderr
    ok = subprocess.run(
        [sys.executable, str(ROOT / "flowerconfig.py")],
        env={**env, "FLOWER_BASIC_AUTH": "ops:pw"},
        capture_output=True,
        timeout=30,
    )
    assert ok.returncode == 0
