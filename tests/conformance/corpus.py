"""The xAPI conformance corpus (tests/conformance/xapi/) and the installations it is played
against, for the unit test (the reader) and the integration test (over HTTP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).parent / "xapi"
PASSWORDS = {
    "moodle": "logstore-password",
    "cmi5": "cmi5-lms-password",
    "spec": "spec-examples-password",
}
ATTEMPTED = "http://adlnet.gov/expapi/verbs/attempted"
ATTENDED = "http://adlnet.gov/expapi/verbs/attended"
COUNTED = [
    "http://adlnet.gov/expapi/verbs/completed",
    "http://adlnet.gov/expapi/verbs/passed",
    "https://w3id.org/xapi/adl/verbs/satisfied",
]


def password_env(instance: str) -> str:
    return f"XAPI_{instance.upper()}_PASSWORD"


# A Moodle log store with the defaults; a cmi5 LMS whose Coachview components carry the AU's
# (and the course's) IRI; the specification's examples, which name learners by mbox and use
# verbs a course would not count (here counted, to reach what comes after the verb).
INSTALLATIONS: dict[str, dict[str, Any]] = {
    "moodle": {},
    "cmi5": {"course_pattern": "(?P<course>.+)"},
    "spec": {
        "course_pattern": "(?P<course>.+)",
        "actor_id": "mbox",
        "verbs": [*COUNTED, ATTEMPTED, ATTENDED],
    },
}


def entry(instance: str) -> dict[str, Any]:
    """The installation's sources-file entry."""
    return {
        "kind": "xapi",
        "instance": instance,
        "basic_auth": {"username": f"{instance}-sender", "password_env": password_env(instance)},
        **INSTALLATIONS[instance],
    }


def cases() -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, json.loads(p.read_text())) for p in sorted(CORPUS.glob("*.json"))]
