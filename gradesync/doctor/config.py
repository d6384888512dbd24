"""The settings as doctor sees them: an environment that ``Settings`` refuses is reported, not
fatal. Each refused variable becomes a failed check and falls back to its default, so the
other checks still run."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from gradesync.doctor.model import Check, fail
from gradesync.settings import Settings

AREA = "configuration"


def load() -> tuple[Settings, dict[str, str]]:
    """The settings, and each refused variable with why (never its value)."""
    refused: dict[str, str] = {}
    overrides: dict[str, Any] = {}
    for _ in range(len(Settings.model_fields)):  # at most once per field: each pass fixes one
        try:
            return Settings(**overrides), refused
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False):
                name = str(error["loc"][0]) if error["loc"] else "(settings)"
                refused[name] = error["msg"].removeprefix("Value error, ")
                overrides[name] = _default(name)
    return Settings(**overrides), refused


def _default(alias: str) -> Any:
    for field in Settings.model_fields.values():
        if field.alias == alias:
            return field.get_default(call_default_factory=True)
    raise KeyError(alias)  # pydantic named a variable Settings does not have


def refused_checks(refused: dict[str, str], secret_prefix: str) -> list[Check]:
    """Refused variables other than webhook secrets (those have their own check per source)."""
    return [
        fail(AREA, name, f"refused: {why}; its default is used for the checks below", name)
        for name, why in refused.items()
        if not name.startswith(secret_prefix)
    ]
