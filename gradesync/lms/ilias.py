"""ILIAS: the SOAP client and the learning-progress data it returns.

SOAP (``webservice/soap/server.php``, RPC style, namespace ``urn:ilUserAdministration``):
``login(client, username, password)`` → ``sid``; ``getLearningProgressChanges(sid, timestamp,
include_ref_ids, type_filter)`` → ``lp_data``, an ``<LPData>`` of ``<LPChange UserId ObjId
RefIds Timestamp LPStatus/>`` (ILIAS ``webservice/soap/classes/
class.ilSoapLearningProgressAdministration.php``); ``LPStatus`` 0 not attempted, 1 in progress,
2 completed, 3 failed (``ilLPStatus``); faults as SOAP-ENV:Fault. Every XML document from ILIAS
is read with defusedxml: an LMS's answer is not trusted with entity expansion.

Hand-written envelopes rather than zeep: ILIAS's WSDL is nusoap RPC/encoded, which zeep only
partly supports, and two calls do not need a SOAP framework.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from xml.etree.ElementTree import ParseError
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import httpx
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
)

from gradesync import http
from gradesync.errors import Permanent, Transient
from gradesync.event import (
    CompletionEvent,
    Identifier,
    describe,
    instant_from_epoch,
    plausible_instant,
)
from gradesync.parsed import Completion, Ignored, Parsed, Rejected
from gradesync.sources import IliasSource

NS = "urn:ilUserAdministration"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
# Faults a later call may not see; anything else (bad credentials, no permission) is config.
TRANSIENT_FAULTS = ("session", "expired", "timeout")


def envelope(method: str, params: list[tuple[str, str | bool | list[str]]]) -> bytes:
    def value(name: str, v: str | bool | list[str]) -> str:
        if isinstance(v, bool):
            return f'<{name} xsi:type="xsd:boolean">{"true" if v else "false"}</{name}>'
        if isinstance(v, list):
            items = "".join(f'<item xsi:type="xsd:string">{escape(i)}</item>' for i in v)
            return (
                f'<{name} xsi:type="SOAP-ENC:Array" '
                f'SOAP-ENC:arrayType="xsd:string[{len(v)}]">{items}</{name}>'
            )
        return f'<{name} xsi:type="xsd:string">{escape(v)}</{name}>'

    body = "".join(value(n, v) for n, v in params)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}" '
        'xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xmlns:ns1="{NS}"><SOAP-ENV:Body><ns1:{method}>{body}</ns1:{method}>'
        "</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    ).encode()


def result(xml: bytes, method: str, field: str) -> str:
    try:
        root = SafeET.fromstring(xml)
    except (ParseError, DefusedXmlException) as exc:
        raise Transient(f"ilias {method}: response is not XML", code="ilias_bad_response") from exc
    fault = root.find(f".//{{{SOAP_ENV}}}Fault")
    if fault is not None:
        text = (fault.findtext("faultstring") or "").strip()[:300]
        if any(word in text.lower() for word in TRANSIENT_FAULTS):
            raise Transient(f"ilias {method}: {text}", code="ilias_fault")
        raise Permanent(f"ilias {method}: {text}", code="ilias_fault")
    for node in root.iter():
        if node.tag.rsplit("}", 1)[-1] == field:
            return node.text or ""
    raise Transient(f"ilias {method}: no <{field}> in the response", code="ilias_bad_response")


class IliasSoap:
    def __init__(
        self, url: str, timeout_s: float = 30.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._url = url
        self._http = httpx.Client(timeout=timeout_s, transport=transport)

    def _call(
        self, method: str, params: list[tuple[str, str | bool | list[str]]], field: str
    ) -> str:
        response = http.request(
            self._http,
            "POST",
            self._url,
            content=envelope(method, params),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f"{NS}#{method}"},
        )
        # SOAP faults come as HTTP 500 and say more than the status does.
        if not (response.status_code == 500 and b"Fault" in response.content):
            http.raise_for_status(response, f"ilias {method}")
        return result(response.content, method, field)

    def login(self, client: str, username: str, password: str) -> str:
        return self._call(
            "login", [("client", client), ("username", username), ("password", password)], "sid"
        )

    def learning_progress_changes(self, sid: str, since: str) -> str:
        return self._call(
            "getLearningProgressChanges",
            [
                ("sid", sid),
                ("timestamp", since),
                ("include_ref_ids", True),
                ("type_filter", ["crs"]),
            ],
            "lp_data",
        )

    def logout(self, sid: str) -> None:
        self._call("logout", [("sid", sid)], "success")


# -- learning progress ------------------------------------------------------------------------

COMPLETED = 2
STATUS_NAMES = {0: "not attempted", 1: "in progress", 2: "completed", 3: "failed"}
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def status_text(status: int) -> str:
    return f"{status} ({STATUS_NAMES.get(status, 'unknown')})"


def ilias_time(value: Any, tz: ZoneInfo) -> datetime:
    """ILIAS writes server-local ``YYYY-MM-DD hh:mm:ss``; epoch seconds and ISO also pass."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return instant_from_epoch(value, tz)
    if isinstance(value, str):
        try:
            moment = datetime.strptime(value.strip(), TIMESTAMP_FORMAT)
        except ValueError:
            moment = datetime.fromisoformat(value.strip())
        return moment if moment.tzinfo else moment.replace(tzinfo=tz)
    raise ValueError("must be 'YYYY-MM-DD hh:mm:ss', ISO 8601 or epoch seconds")


def _server_time(value: Any, info: ValidationInfo) -> datetime:
    if not isinstance(info.context, dict) or "tz" not in info.context:
        raise TypeError(
            "validate ILIAS data with context=gradesync.lms.ilias.context(installation)"
        )
    tz: ZoneInfo = info.context["tz"]
    return ilias_time(value, tz)


# Validate with ``context=context(installation)``: ILIAS's times are in its server's zone.
LocalTime = Annotated[datetime, BeforeValidator(_server_time), AfterValidator(plausible_instant)]


def context(inst: IliasSource) -> dict[str, Any]:
    return {"tz": inst.tz}


class LPChange(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    usr_id: Identifier = Field(alias="UserId")
    obj_id: Identifier = Field(alias="ObjId")
    ref_ids: str = Field("", alias="RefIds")
    timestamp: LocalTime = Field(alias="Timestamp")
    status: int = Field(alias="LPStatus")


def completion(
    inst: IliasSource, usr: str, obj: str, ref_ids: str, at: datetime, mark: str | None
) -> Completion:
    course = obj if inst.course_field == "obj_id" else (ref_ids.split(",")[0].strip() or obj)
    event = CompletionEvent.model_validate(
        {
            "source": "ilias",
            "source_instance": inst.instance,
            "event_id": f"ilias-lp-{obj}-{usr}-{int(at.timestamp())}",
            "person_id": usr,
            "course_id": course,
            "grade": mark or None,
            "completed_at": at,
        }
    )
    return Completion(event=event)


def parse_lp_data(xml: str | bytes, inst: IliasSource) -> list[Parsed]:
    """The completions in an ``<LPData>`` document; ILIAS's free-text LP mark is not in it, so
    pulled completions carry no grade."""
    try:
        root = SafeET.fromstring(xml)
    except (ParseError, DefusedXmlException) as exc:
        raise ValueError(f"lp_data is not acceptable XML: {exc}") from exc
    if root.tag != "LPData":
        raise ValueError(f"expected <LPData>, got <{root.tag}>")
    return [_lp_change(n, inst, row) for row, n in enumerate(root.iter("LPChange"), start=1)]


def _lp_change(node: Any, inst: IliasSource, row: int) -> Parsed:
    """One row; a bad row is rejected alone (ILIAS writes "0000-00-00 00:00:00" for "no time"),
    so it can never hold back the rows after it, nor the poller's cursor."""
    status = node.attrib.get("LPStatus", "")
    if status.strip() != str(COMPLETED):
        shown = status_text(int(status)) if status.isdigit() else repr(status)
        return Ignored(reason=f"ILIAS LPStatus {shown}")
    try:
        change = LPChange.model_validate(node.attrib, context=context(inst))
        return completion(
            inst, change.usr_id, change.obj_id, change.ref_ids, change.timestamp, None
        )
    except ValidationError as exc:
        return Rejected(reason=f"LPChange #{row}: {describe(exc)}")
