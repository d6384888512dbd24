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
    try:
        return Settings(), {}
    except ValidationError as exc:
        refused = {
            str(error["loc"][0]): error["msg"].removeprefix("Value error, ")
            for error in exc.errors(include_url=False, include_input=False)
        }
    # Defaults are valid by construction: a second refusal would be a bug, and should show.
    return Settings(**{name: _default(name) for name in refused}), refused


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
