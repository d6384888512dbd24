"""ILIAS SOAP (``webservice/soap/server.php``, RPC style, namespace ``urn:ilUserAdministration``):
``login(client, username, password)`` → ``sid``; ``getLearningProgressChanges(sid, timestamp,
include_ref_ids, type_filter)`` → ``lp_data`` (an LPData XML string); faults as SOAP-ENV:Fault.

Hand-written envelopes rather than zeep: ILIAS's WSDL is nusoap RPC/encoded, which zeep only
partly supports, and two calls do not need a SOAP framework.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

import httpx

from gradesync import http
from gradesync.errors import Permanent, Transient

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
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
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
        if response.status_code == 500 and b"Fault" in response.content:
            return result(response.content, method, field)  # SOAP faults come as HTTP 500
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
