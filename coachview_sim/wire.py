"""The simulator's own copy of Coachview's REST wire format: paths, JSON names, headers, ``where=``.

Written independently of the client (``gradesync.coachview``) on purpose: if both sides shared
these names, a wrong guess in the client could never fail a test. ``tests/contract/`` pins both
sides to the same literal examples, so a rename on either side fails there.
"""

from __future__ import annotations

from typing import Final

TOKEN_PATH: Final = "/auth/connect/token"
PERSONS: Final = "/api/v1/Personen"
COMPONENTS: Final = "/api/v1/Opleidingsonderdelen"
PARTICIPATIONS: Final = "/api/v1/Opleidingsonderdeeluitvoeringen"
REQUEST_COMPONENTS: Final = "/api/v1/Opleidingsvraagonderdelen"
RESULT_LINK: Final = "/elearning/result.aspx"
RESULT_LINK_SIGNATURE: Final = "X-WebHook-Signature"

RATE_LIMIT: Final = "X-Rate-Limit-Limit"
RATE_REMAINING: Final = "X-Rate-Limit-Remaining"
RATE_RESET: Final = "X-Rate-Limit-Reset"

# Every response carries this, so a client can tell it is talking to the simulator and refuse
# to deliver real grades into it (gradesync does unless GRADESYNC_INSECURE_DEV=1).
SIMULATOR_HEADER: Final = "X-Gradesync-Simulator"
SIMULATOR_HEADER_VALUE: Final = "1"

# Persoon
P_ID: Final = "id"
P_EXTERN_ID: Final = "externId"
P_FIRST_NAME: Final = "voornaam"
P_LAST_NAME: Final = "achternaam"

# Opleidingsonderdeel (a training's component)
C_ID: Final = "id"
C_TRAINING_ID: Final = "opleidingId"
C_NAME: Final = "naam"
C_FORM: Final = "lesvormId"
C_ELEARNING_CODE: Final = "elearningCode"

# Every written entity's version, for If-Match.
AUDIT: Final = "auditTrail"
ETAG: Final = "etag"

# Opleidingsonderdeeluitvoering (one participant's participation in one component)
U_ID: Final = "id"
U_COMPONENT_ID: Final = "opleidingsonderdeelId"
U_PERSON_ID: Final = "persoonId"
U_ENROLMENT_ID: Final = "opleidingsvraagId"
U_RESULT: Final = "resultaat"
U_ATTENDANCE: Final = "aanwezig"
U_PASSED: Final = "geslaagd"

# Opleidingsvraagonderdeel (one enrolment's part for one component)
V_ID: Final = "id"
V_ENROLMENT_ID: Final = "opleidingsvraagId"
V_COMPONENT_ID: Final = "opleidingsonderdeelId"
V_PERSON_ID: Final = "persoonId"
V_COMPLETED: Final = "afgerond"
V_APPROVED: Final = "akkoord"
V_APPROVAL_DATE: Final = "datumAkkoord"


def parse_where(text: str) -> dict[str, list[str]]:
    """Coachview's filter ``a=1;b=x,y``: ``;`` joins conditions (AND), a comma list is any-of."""
    conditions: dict[str, list[str]] = {}
    for clause in text.split(";"):
        if not clause.strip():
            continue
        field, equals, values = clause.partition("=")
        if not equals or not field.strip():
            raise ValueError(f"bad where clause {clause!r}: expected field=value")
        conditions[field.strip()] = [value.strip() for value in values.split(",")]
    return conditions
