"""The installation models' own rules (gradesync/sources.py), in the words an operator reads:
each refusal of one sources-file entry names its field and says what to write instead, names
are shown escaped and cut to a length, and an xAPI installation's ``moodle`` must name a Moodle
installation that can map its learners."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gradesync import sources_file
from gradesync.sources import IliasSource, Sources, XapiSource, shown
from tests.unit.test_sources import WHSEC, write

HOOK = "a-moodle-token-of-16"


def test_a_name_is_shown_whole_up_to_64_characters_and_cut_after() -> None:
    assert shown("a" * 64) == repr("a" * 64)
    assert shown("a" * 65) == f"{'a' * 64!r}… (65 characters)"
    assert shown("x\u200by") == "'x\\u200by'"  # a zero-width character is seen as such


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (
            {"kind": "ilias", "instance": "Big Name", "secret": WHSEC},
            "installations[0].instance: must be a slug: lower-case letters, digits, - and _, "
            "starting with a letter or digit, at most 63 characters",
        ),
        (
            {"kind": "ilias", "secret": WHSEC, "secret_env": "HOOK"},
            "installations[0].secret_env: give the webhook secret literally or by environment "
            "variable, not both",
        ),
        (
            {"kind": "ilias", "secret_env": "1HOOK"},
            "installations[0].secret_env: '1HOOK' is not an environment variable name",
        ),
        (
            {
                "kind": "ilias",
                "secret": WHSEC,
                "api": {"url": "https://ilias.test", "credential": " soap-password "},
            },
            "installations[0].api.credential: has whitespace around it (a copy-paste slip?)",
        ),
    ],
)
def test_an_entry_is_refused_naming_its_field_and_the_fix(
    tmp_path: Path, entry: dict[str, Any], problem: str
) -> None:
    with pytest.raises(sources_file.SourcesError) as info:
        sources_file.load(write(tmp_path, [entry]), {"HOOK": WHSEC})
    assert [line.split(": ", 1)[1] for line in info.value.problems] == [problem]


@pytest.mark.parametrize("context", [None, {}, {"from_environment": False}])
def test_an_installation_validated_without_an_environment_finds_its_variable_unset(
    context: dict[str, Any] | None,
) -> None:
    # A caller validating one entry by itself: the variable is unset, never a crash.
    with pytest.raises(ValidationError, match=r"environment variable HOOK \(the webhook secret\)"):
        IliasSource.model_validate({"kind": "ilias", "secret_env": "HOOK"}, context=context)


def test_an_xapi_senders_basic_auth_password_comes_from_its_variable() -> None:
    basic = {"username": "logstore", "password_env": "LRS_PASSWORD"}
    sources = Sources.parse(
        {"installations": [{"kind": "xapi", "basic_auth": basic}]},
        {"LRS_PASSWORD": "lrs-basic-auth-password"},
    )
    auth = sources.typed(XapiSource).basic_auth
    assert auth is not None and auth.secret() == "lrs-basic-auth-password"


def moodle(instance: str, **more: Any) -> dict[str, Any]:
    return {"kind": "moodle", "instance": instance, "secret": HOOK, **more}


WITH_API = {"api": {"url": "https://moodle.test", "credential": "ws-token"}}
WITHOUT_API = {"grade_policy": "completion_only"}
LRS = {"kind": "xapi", "instance": "lrs", "secret": WHSEC, "moodle": "campus"}


@pytest.mark.parametrize(
    "other",
    [
        moodle("other", **WITH_API),  # another Moodle has an api; the one named does not exist
        moodle("campus", **WITHOUT_API),  # the one named cannot read a learner's fields
    ],
)
def test_an_xapi_installation_must_name_a_moodle_with_an_api(other: dict[str, Any]) -> None:
    said = (
        "installations[1].moodle: names no Moodle installation with an api ('campus'): its web "
        "services map the xAPI account to the learner"
    )
    with pytest.raises(ValidationError, match=re.escape(said)):
        Sources.parse({"installations": [other, LRS]}, {})


def test_an_xapi_installation_naming_a_moodle_with_an_api_is_taken() -> None:
    sources = Sources.parse({"installations": [moodle("campus", **WITH_API), LRS]}, {})
    assert sources.typed(XapiSource, "lrs").moodle == "campus"
