"""Which bodies each route takes, by Content-Type, and how each is read into JSON-like data.

- Every route: ``application/json`` (or ``…+json``).
- Moodle: ``application/x-www-form-urlencoded`` too. local_webhooks offers it per service
  (valentineus/moodle-webhooks ``classes/service_form.php``: "json" or "x-www-form-urlencoded")
  and posts ``json_encode($event)`` under either header (``lib.php``
  ``local_webhooks_send_request``): the body is JSON. Its develop branch
  (``classes/task/notify.php``) posts the event array itself, which Moodle's curl class encodes
  as form fields: read as those fields when the body is not JSON.
- aNewSpring: ``text/xml`` / ``application/xml`` too (support article "Webhooks": JSON or XML,
  the event name in ``type``), read with defusedxml: no entity expansion, no external entities.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeXml
from defusedxml.common import DefusedXmlException

from gradesync import safejson

Decoder = Callable[[bytes], Any]
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
XML = ("text/xml", "application/xml")


class BodyRejected(Exception):
    """A body the route cannot read: ``status`` 415 (media type) or 400 (malformed)."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def decoder(kind: str, content_type: str) -> Decoder:
    """How to read a body sent to ``kind``'s route with this Content-Type; 415 naming what the
    route takes otherwise."""
    media = media_type(content_type)
    if media == JSON or media.endswith("+json"):
        return json_body
    if kind == "moodle" and media == FORM:
        return moodle_form
    if kind == "anewspring" and media in XML:
        return xml_body
    accepted = {"moodle": f"{JSON} or {FORM}", "anewspring": f"{JSON} or text/xml"}
    wanted = accepted.get(kind, JSON)
    raise BodyRejected(415, "unsupported_media_type", f"send Content-Type: {wanted}")


def json_body(body: bytes) -> Any:
    try:
        return safejson.loads(body)
    except safejson.JsonRejected as exc:
        raise BodyRejected(400, "malformed_json", f"body is not acceptable JSON: {exc}") from exc


def moodle_form(body: bytes) -> Any:
    """local_webhooks' form option: its JSON body, or (develop branch) the event as fields."""
    if body.lstrip().startswith(b"{"):
        return json_body(body)
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BodyRejected(400, "malformed_form", "body is neither JSON nor form fields") from exc
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise BodyRejected(400, "malformed_form", f"form field {name!r} appears twice")
        fields[name] = value
    return fields


def xml_body(body: bytes) -> Any:
    """The XML document as the JSON object it stands for: each child element a field, its text
    the value (nested elements nested objects, a repeated element a list). The root's name is
    not a field."""
    try:
        root = SafeXml.fromstring(body, forbid_dtd=True)
    except (SafeXml.ParseError, DefusedXmlException, ValueError) as exc:
        raise BodyRejected(400, "malformed_xml", f"body is not acceptable XML: {exc}") from exc
    value = _element(root, 0)
    return value if isinstance(value, dict) else {}


def _element(node: Element, depth: int) -> Any:
    # The JSON bodies' depth bound: a 64 KiB body nests far deeper than Python's recursion
    # limit, which would end this request in a 500 instead of a 400.
    if depth > safejson.MAX_DEPTH:
        raise BodyRejected(400, "malformed_xml", f"nested deeper than {safejson.MAX_DEPTH} levels")
    children = list(node)
    if not children:
        return (node.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        value = _element(child, depth + 1)
        if child.tag not in out:
            out[child.tag] = value
        # A repeated element is XML's list: a refusal would be an error for a webhook type
        # gradesync does not use, which aNewSpring asks never to answer; a completion field
        # that repeats is then refused by the event's model, naming the field.
        elif isinstance(out[child.tag], list):  # an element's own value is never a list
            out[child.tag].append(value)
        else:
            out[child.tag] = [out[child.tag], value]
    return out
