"""Coachview's e-learning result link: the XML message and its signature.

Public (Coachview's support article, see ../shared/coachview-api.md): one POST per person ×
course to ``/elearning/result.aspx?plugin=<key>``, signed in ``X-WebHook-Signature`` with
HMAC-SHA512 over the whole body; 200 ok, 400 body does not match the XSD, 403 bad signature,
404 person or enrolment not found, 405, 500, 503.

Coachview matches the learner and the course itself, so the message carries the LMS's ids, not
Coachview's: the LMS person id in the element(s) COACHVIEW_PERSON_MATCH names (``ExternId`` for
``externId``; ``PersoonId`` for ``id``, only when the id is ASCII digits) and the LMS course id.
GUESSES, to be confirmed with Coachview: the XSD, hence every element name below, that
Coachview tries ``ExternId`` before ``PersoonId``, and that the digest is Base64-encoded. They
live only in this module; tests/contract pins them as literal messages that the simulator (which
has its own parser) must accept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import date
from typing import Final
from xml.etree import ElementTree as ET

from pydantic import BaseModel

from gradesync.coachview.api import PersonField
from gradesync.errors import Unresolved

ROOT: Final = "ElearningResultaat"
PERSON_ID: Final = "PersoonId"
EXTERN_ID: Final = "ExternId"
COURSE_ID: Final = "Cursusnummer"
GRADE: Final = "Cijfer"
ATTENDANCE: Final = "Aanwezig"
PASSED: Final = "Geslaagd"
COMPLETED: Final = "Afgerond"
COMPLETED_ON: Final = "DatumAfgerond"


class ResultMessage(BaseModel):
    extern_id: str | None = None
    person_id: int | None = None
    course_id: str
    grade: str | None
    completed_on: date


def learner(lms_person_id: str, match_order: Sequence[str]) -> tuple[str | None, int | None]:
    """(``extern_id``, ``person_id``) for :class:`ResultMessage`, from COACHVIEW_PERSON_MATCH;
    an id no named field can carry is ``unknown_person`` here, before anything is sent."""
    extern_id: str | None = None
    person_id: int | None = None
    for field in match_order:
        if field == PersonField.EXTERN_ID:
            extern_id = lms_person_id
        # ASCII digits only: str.isdigit() also holds for "١٠٠١", which int() reads as 1001.
        elif field == PersonField.ID and lms_person_id.isascii() and lms_person_id.isdigit():
            person_id = int(lms_person_id)
    if extern_id is None and person_id is None:
        raise Unresolved(
            "unknown_person",
            "result link: this LMS person id fits no field of COACHVIEW_PERSON_MATCH "
            f"({','.join(match_order)}); a Coachview person id is digits",
        )
    return extern_id, person_id


def render(message: ResultMessage) -> bytes:
    root = ET.Element(ROOT)

    def add(name: str, text: str) -> None:
        ET.SubElement(root, name).text = text

    if message.extern_id is not None:
        add(EXTERN_ID, message.extern_id)
    if message.person_id is not None:
        add(PERSON_ID, str(message.person_id))
    add(COURSE_ID, message.course_id)
    if message.grade is not None:  # Coachview accepts "completed" without a result
        add(GRADE, message.grade)
    add(ATTENDANCE, "true")
    add(PASSED, "true")
    add(COMPLETED, "true")
    add(COMPLETED_ON, message.completed_on.isoformat())
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def sign(body: bytes, secret: str) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha512).digest()
    return base64.b64encode(digest).decode()
