"""Every Coachview path and JSON field name gradesync uses, in one place.

Public facts (Coachview support articles and public connector code, see ../shared/coachview-api.md):
the token endpoint, ``/api/v1/Personen``, ``/api/v1/Opleidingsonderdelen`` with ``elearningCode``,
the ``where=field=value;field=a,b`` query syntax, ``auditTrail.etag`` and the rate-limit headers.

GUESSES, to be confirmed against Coachview's Swagger (training.coachview.net) or support:
- the JSON name of the external id (``externId``; the docs only say "ExternId");
- the participation per participant per component, ``Opleidingsonderdeeluitvoeringen``
  (result, attendance, pass), and its fields ``opleidingsonderdeelId``, ``persoonId``,
  ``opleidingsvraagId``, ``resultaat``, ``aanwezig``, ``geslaagd``;
- the training-request component, ``Opleidingsvraagonderdelen`` (completed, approved, approval
  date), and its fields ``opleidingsvraagId``, ``opleidingsonderdeelId``, ``persoonId``,
  ``afgerond``, ``akkoord``, ``datumAkkoord``;
- that both take a partial ``PUT`` guarded by ``If-Match`` (412 on a stale etag) and carry
  ``auditTrail.etag``.
The simulator keeps its own copy of these names (coachview_sim/wire.py) and tests/contract pins
both to literal exchanges: changing a name here fails a contract test until the examples change.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Final

from gradesync.errors import Permanent

TOKEN_PATH: Final = "/auth/connect/token"
# The e-learning result link (not REST): one signed XML POST per person × course.
RESULT_LINK: Final = "/elearning/result.aspx"
RESULT_LINK_SIGNATURE: Final = "X-WebHook-Signature"

PERSONS: Final = "/api/v1/Personen"
COMPONENTS: Final = "/api/v1/Opleidingsonderdelen"
# Per participant per component: result, attendance, pass.
PARTICIPATIONS: Final = "/api/v1/Opleidingsonderdeeluitvoeringen"
# The participant's enrolment's part for one component: completed, approved, approval date.
REQUEST_COMPONENTS: Final = "/api/v1/Opleidingsvraagonderdelen"


def token_form(client_id: str, client_secret: str, scope: str) -> dict[str, str]:
    """The OAuth2 client-credentials request body."""
    return {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": client_secret,
        "scope": scope,
    }


def person_path(person_id: int) -> str:
    return f"{PERSONS}/{person_id}"


def participation_path(participation_id: int) -> str:
    return f"{PARTICIPATIONS}/{participation_id}"


def request_component_path(rc_id: int) -> str:
    return f"{REQUEST_COMPONENTS}/{rc_id}"


class PersonField:
    ID: Final = "id"
    EXTERN_ID: Final = "externId"
    FIRST_NAME: Final = "voornaam"
    LAST_NAME: Final = "achternaam"


class ComponentField:
    ID: Final = "id"
    TRAINING_ID: Final = "opleidingId"
    NAME: Final = "naam"
    FORM: Final = "lesvormId"
    ELEARNING_CODE: Final = "elearningCode"


class Audit:
    """Every written entity's version, for ``If-Match``."""

    AUDIT: Final = "auditTrail"
    ETAG: Final = "etag"


class ParticipationField:
    ID: Final = "id"
    COMPONENT_ID: Final = "opleidingsonderdeelId"
    PERSON_ID: Final = "persoonId"
    ENROLMENT_ID: Final = "opleidingsvraagId"
    RESULT: Final = "resultaat"
    ATTENDANCE: Final = "aanwezig"
    PASSED: Final = "geslaagd"


class RequestComponentField:
    ID: Final = "id"
    ENROLMENT_ID: Final = "opleidingsvraagId"
    COMPONENT_ID: Final = "opleidingsonderdeelId"
    PERSON_ID: Final = "persoonId"
    COMPLETED: Final = "afgerond"
    APPROVED: Final = "akkoord"
    APPROVAL_DATE: Final = "datumAkkoord"


# gradesync's English field names (see gradesync.steps) → Coachview's, per entity.
PARTICIPATION_WRITES: Final[dict[str, str]] = {
    "result": ParticipationField.RESULT,
    "attendance": ParticipationField.ATTENDANCE,
    "passed": ParticipationField.PASSED,
}
REQUEST_COMPONENT_WRITES: Final[dict[str, str]] = {
    "completed": RequestComponentField.COMPLETED,
    "approved": RequestComponentField.APPROVED,
    "approval_date": RequestComponentField.APPROVAL_DATE,
}

RATE_LIMIT: Final = "X-Rate-Limit-Limit"
RATE_REMAINING: Final = "X-Rate-Limit-Remaining"
RATE_RESET: Final = "X-Rate-Limit-Reset"


# Characters Coachview's ``where=`` syntax reads as syntax, not data: ``;`` joins conditions,
# ``,`` makes an any-of list (or a date range), ``=``, ``<``, ``>``, ``!`` compare. Coachview
# documents no escape for them, so a value holding one cannot be asked for safely: the id
# ``nobody,57`` would match learner 57.
WHERE_SYNTAX: Final = ";,=<>!"


class UnqueryableValue(Permanent):
    """A value that ``where=`` would read as syntax: refused, never sent (repeating cannot
    help, so the record ends ``failed`` where an operator sees it)."""

    code = "unqueryable_id"


def _syntax_in(text: str) -> list[str]:
    found = [repr(c) for c in WHERE_SYNTAX if c in text]
    if any(unicodedata.category(c).startswith("C") for c in text):
        found.append("control or invisible characters")
    return found


def where(conditions: Mapping[str, str | int | Sequence[str | int]]) -> str:
    """Coachview's filter syntax: ``a=1;b=x,y`` (``;`` joins with AND, a comma list is any-of).

    Raises :class:`UnqueryableValue` naming the offending characters (never the value: it is
    an LMS id, personal data) rather than send a filter that means something else."""
    parts = []
    for name, value in conditions.items():
        values = [value] if isinstance(value, str | int) else list(value)
        bad = sorted({c for v in values if isinstance(v, str) for c in _syntax_in(v)})
        if bad:
            raise UnqueryableValue(
                f"the value for Coachview field {name!r} contains {', '.join(bad)}, which "
                "Coachview's where= filter reads as syntax; refusing to query with it"
            )
        parts.append(f"{name}={','.join(str(v) for v in values)}")
    return ";".join(parts)
