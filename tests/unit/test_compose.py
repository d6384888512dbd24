"""docker-compose.yml, checked without Docker: services, commands, health, persistence."""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def _env_example() -> tuple[list[str], dict[str, str]]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    values = dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return lines, values


EXAMPLE_LINES, EXAMPLE = _env_example()
# What the operator must supply: nothing here may be a placeholder that would pass for a value.
OPERATOR_SECRETS = (
    "COACHVIEW_BASE_URL",
    "COACHVIEW_CLIENT_ID",
    "COACHVIEW_CLIENT_SECRET",
    "GRADESYNC_WEBHOOK_SECRET_CANONICAL",
    "GRADESYNC_WEBHOOK_SECRET_ILIAS",
    "GRADESYNC_WEBHOOK_SECRET_XAPI",
    "GRADESYNC_WEBHOOK_SECRET_MOODLE",
    "GRADESYNC_WEBHOOK_SECRET_ANEWSPRING",
    "FLOWER_BASIC_AUTH",
)


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


def test_simulator_runs_only_under_the_dev_profile_and_only_on_localhost() -> None:
    """Its /_sim admin API is unauthenticated: never started by default, never published."""
    sim = SERVICES["coachview-sim"]
    assert sim["profiles"] == ["dev"]
    assert all(str(port).startswith("127.0.0.1:") for port in sim.get("ports", []))
    for name, service in SERVICES.items():
        if name == "coachview-sim":
            continue
        assert "profiles" not in service, f"{name} must run by default"
        assert "coachview-sim" not in service.get("depends_on", {}), name
    assert "coachview-sim" not in EXAMPLE["COACHVIEW_BASE_URL"]


def _comments_above(name: str) -> str:
    """The comment lines of the paragraph in which ``name`` is set."""
    index = next(i for i, line in enumerate(EXAMPLE_LINES) if line.startswith(f"{name}="))
    above: list[str] = []
    while index > 0 and EXAMPLE_LINES[index - 1].strip():
        index -= 1
        if EXAMPLE_LINES[index].startswith("#"):
            above.append(EXAMPLE_LINES[index])
    return "\n".join(above)


def test_secrets_come_from_env_file_and_the_example_leaves_them_empty() -> None:
    for name, service in SERVICES.items():
        if name != "redis":
            assert service["env_file"] == ".env", name
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    for name in OPERATOR_SECRETS:
        assert EXAMPLE[name] == "", f"{name} must be left for the operator to fill in"
    for name in OPERATOR_SECRETS[3:]:
        assert "python3 -c" in _comments_above(name), f"{name}: say how to generate one"
    assert "whsec_" in _comments_above("GRADESYNC_WEBHOOK_SECRET_CANONICAL")
    assert "--profile dev" in _comments_above("COACHVIEW_BASE_URL")
    assert "change-me" not in (ROOT / ".env.example").read_text()


def test_every_value_the_example_does_set_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    from gradesync.settings import Settings

    for name in EXAMPLE:
        monkeypatch.delenv(name, raising=False)
    # As in development (the only way the example starts without the operator's values).
    monkeypatch.setenv("GRADESYNC_INSECURE_DEV", "1")
    settings = Settings(_env_file=ROOT / ".env.example")
    assert settings.coachview_delivery == EXAMPLE["COACHVIEW_DELIVERY"]


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


def test_flower_is_published_on_the_loopback_interface_only() -> None:
    """Issue 25 item 11: compose published Flower on every interface."""
    for port in SERVICES["flower"]["ports"]:
        assert str(port).startswith("127.0.0.1:"), port
