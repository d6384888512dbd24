"""The receiving end of Coachview's e-learning result link: signature check and XML message.

One POST per person × course to ``/elearning/result.aspx?plugin=<key>``, signed in
``X-WebHook-Signature`` with Base64(HMAC-SHA512(secret, body)). The learner is named by
``ExternId`` and/or ``PersoonId`` (the store tries them in that order), the course by the LMS
course id. The element names are the project's current guess at Coachview's XSD, written here
independently of the client's renderer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import date
from xml.etree import ElementTree as ET

ROOT = "ElearningResultaat"
PERSON_ID = "PersoonId"
EXTERN_ID = "ExternId"
COURSE_ID = "Cursusnummer"
GRADE = "Cijfer"
COMPLETED_ON = "DatumAfgerond"


@dataclass(frozen=True)
class ResultMessage:
    course_id: str
    grade: str | None
    completed_on: date
    extern_id: str | None = None
    person_id: int | None = None


def signature_valid(body: bytes, secret: str, signature: str | None) -> bool:
    """Compares digests as bytes: a header that is not Base64 (or not ASCII) is simply wrong."""
    if signature is None:
        return False
    try:
        given = base64.b64decode(signature.strip().encode("latin-1"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha512).digest()
    return hmac.compare_digest(expected, given)


def parse(body: bytes) -> ResultMessage:
    """The message, or ``ValueError`` naming what does not fit the XSD."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ValueError(f"not XML: {exc}") from exc
    if root.tag != ROOT:
        raise ValueError(f"root element must be {ROOT}, got {root.tag}")

    def text(name: str) -> str | None:
        node = root.find(name)
        value = "" if node is None or node.text is None else node.text.strip()
        return value or None

    def required(name: str) -> str:
        value = text(name)
        if value is None:
            raise ValueError(f"missing element {name}")
        return value

    person, extern_id, completed_on = text(PERSON_ID), text(EXTERN_ID), required(COMPLETED_ON)
    if person is None and extern_id is None:
        raise ValueError(f"missing element {EXTERN_ID} or {PERSON_ID}: who is the learner?")
    if person is not None and not (person.isascii() and person.isdigit()):
        raise ValueError(f"{PERSON_ID} must be a number, got {person!r}")
    try:
        day = date.fromisoformat(completed_on)
    except ValueError as exc:
        raise ValueError(f"{COMPLETED_ON} must be a date (YYYY-MM-DD): {completed_on!r}") from exc
    return ResultMessage(
        course_id=required(COURSE_ID),
        grade=text(GRADE),
        completed_on=day,
        extern_id=extern_id,
        person_id=None if person is None else int(person),
    )
