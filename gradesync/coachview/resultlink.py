"""Coachview's e-learning result link: the XML message and its signature.

Public (Coachview's support article, see ../shared/coachview-api.md): one POST per person ×
course to ``/elearning/result.aspx?plugin=<key>``, signed in ``X-WebHook-Signature`` with
HMAC-SHA512 over the whole body; 200 ok, 400 body does not match the XSD, 403 bad signature,
404 person or enrolment not found, 405, 500, 503.
GUESSES, to be confirmed with Coachview: the XSD, hence every element name below, and that the
digest is Base64-encoded. They live only in this module; tests/contract pins them as literal
messages that the simulator (which has its own parser) must accept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import date
from typing import Final
from xml.etree import ElementTree as ET

from pydantic import BaseModel

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
    person_id: int
    extern_id: str | None = None
    course_id: str
    grade: str | None
    completed_on: date


def render(message: ResultMessage) -> bytes:
    root = ET.Element(ROOT)

    def add(name: str, text: str) -> None:
        ET.SubElement(root, name).text = text

    add(PERSON_ID, str(message.person_id))
    if message.extern_id:
        add(EXTERN_ID, message.extern_id)
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
