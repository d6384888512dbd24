"""What an ILIAS SOAP server receives from gradesync, and how its answers are read.

The calls are RPC/encoded ``urn:ilUserAdministration`` operations with the part names ILIAS
registers (``webservice/soap/classes/class.ilNusoapUserAdministrationAdapter.php``: ``login``
client/username/password → ``sid``, ``getLearningProgressChanges`` sid/timestamp/
include_ref_ids/type_filter → ``lp_data``, ``logout`` sid → ``success``). The answers are nusoap's
RPC envelopes, unqualified parts, faults as ``SOAP-ENV:Fault`` with HTTP 500, as the fake LMS of
the integration tests writes them (tests/fakes/lms.py).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree import ElementTree

import httpx
import pytest

from gradesync.errors import Permanent, Transient
from gradesync.lms.ilias import IliasSoap, envelope, result

URL = "https://ilias.test/webservice/soap/server.php"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/"
XSD = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS = "urn:ilUserAdministration"


@dataclass(frozen=True)
class Call:
    """One RPC call as a SOAP server reads it: the operation and its typed parts."""

    method: str
    parts: list[tuple[str, str, str | list[str]]]  # (name, xsd type, value)


def expanded(qname: str, prefixes: dict[str, str]) -> str:
    """``xsd:string`` → ``{http://www.w3.org/2001/XMLSchema}string`` (a QName in a value)."""
    prefix, local = qname.split(":")
    return f"{{{prefixes[prefix]}}}{local}"


def read_call(body: bytes) -> Call:
    """Parse a request strictly: an XML declaration, the SOAP 1.1 envelope and body, one
    operation in ILIAS's namespace whose parts carry resolvable ``xsi:type``s, and no stray
    text anywhere (a server would read it as part of a value)."""
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    prefixes: dict[str, str] = {}
    for event, item in ElementTree.iterparse(io.BytesIO(body), events=("start-ns",)):
        prefix, uri = item if event == "start-ns" else ("", "")
        prefixes[prefix] = uri
    root = ElementTree.fromstring(body)
    for node in root.iter():
        assert not (node.text or "").strip() or not len(node), f"stray text in <{node.tag}>"
        assert not (node.tail or "").strip(), f"stray text after <{node.tag}>"
    assert root.tag == f"{{{SOAP_ENV}}}Envelope"
    (soap_body,) = root
    assert soap_body.tag == f"{{{SOAP_ENV}}}Body"
    (operation,) = soap_body
    assert operation.tag.startswith(f"{{{NS}}}")
    parts: list[tuple[str, str, str | list[str]]] = []
    for part in operation:
        kind = expanded(part.attrib[f"{{{XSI}}}type"], prefixes)
        if kind == f"{{{SOAP_ENC}}}Array":
            items = list(part)
            assert part.attrib[f"{{{SOAP_ENC}}}arrayType"] == f"xsd:string[{len(items)}]"
            assert all(
                expanded(i.attrib[f"{{{XSI}}}type"], prefixes) == f"{{{XSD}}}string" for i in items
            )
            parts.append((part.tag, kind, [i.text or "" for i in items]))
        else:
            parts.append((part.tag, kind, part.text or ""))
    return Call(operation.tag.removeprefix(f"{{{NS}}}"), parts)


def answer(inner: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope '
        f'xmlns:SOAP-ENV="{SOAP_ENV}" xmlns:xsi="{XSI}" xmlns:ns1="{NS}">'
        f"<SOAP-ENV:Body>{inner}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    ).encode()


def fault(text: str | None) -> bytes:
    string = "" if text is None else f"<faultstring>{text}</faultstring>"
    return answer(f"<SOAP-ENV:Fault><faultcode>Client</faultcode>{string}</SOAP-ENV:Fault>")


class Ilias:
    """A SOAP endpoint that records what it was sent and answers ``reply(call)``."""

    def __init__(self, reply: Callable[[Call], httpx.Response]) -> None:
        self.calls: list[Call] = []
        self.requests: list[httpx.Request] = []
        self._reply = reply

    def handle(self, request: httpx.Request) -> httpx.Response:
        call = read_call(request.content)
        self.requests.append(request)
        self.calls.append(call)
        return self._reply(call)

    def client(self) -> IliasSoap:
        return IliasSoap(URL, transport=httpx.MockTransport(self.handle))


def returning(field: str, value: str) -> Callable[[Call], httpx.Response]:
    def reply(call: Call) -> httpx.Response:
        part = f'<{field} xsi:type="xsd:string">{value}</{field}>'
        return httpx.Response(
            200, content=answer(f"<ns1:{call.method}Response>{part}</ns1:{call.method}Response>")
        )

    return reply


def test_login_sends_the_three_parts_ilias_registers_and_returns_the_sid() -> None:
    ilias = Ilias(returning("sid", "abc::client"))
    assert ilias.client().login("default", "gradesync", "pw & <secret>") == "abc::client"
    string = f"{{{XSD}}}string"
    assert ilias.calls == [
        Call(
            "login",
            [
                ("client", string, "default"),
                ("username", string, "gradesync"),
                ("password", string, "pw & <secret>"),
            ],
        )
    ]
    (request,) = ilias.requests
    assert request.method == "POST" and str(request.url) == URL
    assert request.headers["SOAPAction"] == f"{NS}#login"
    assert request.headers["Content-Type"] == "text/xml; charset=utf-8"
    # ILIAS gets half a minute to answer (the poller and the doctor use the default).
    assert request.extensions["timeout"] == dict.fromkeys(
        ("connect", "read", "write", "pool"), 30.0
    )


def test_learning_progress_changes_ask_for_courses_with_their_ref_ids() -> None:
    lp_data = '&lt;LPData&gt;&lt;LPChange UserId="57" ObjId="312"/&gt;&lt;/LPData&gt;'
    ilias = Ilias(returning("lp_data", lp_data))
    changes = ilias.client().learning_progress_changes("abc::client", "2026-11-20 10:00:00")
    assert changes == '<LPData><LPChange UserId="57" ObjId="312"/></LPData>'
    assert ilias.calls == [
        Call(
            "getLearningProgressChanges",
            [
                ("sid", f"{{{XSD}}}string", "abc::client"),
                ("timestamp", f"{{{XSD}}}string", "2026-11-20 10:00:00"),
                ("include_ref_ids", f"{{{XSD}}}boolean", "true"),
                ("type_filter", f"{{{SOAP_ENC}}}Array", ["crs"]),
            ],
        )
    ]
    assert ilias.requests[0].headers["SOAPAction"] == f"{NS}#getLearningProgressChanges"


def test_no_changes_is_an_empty_lp_data_not_a_made_up_one() -> None:
    ilias = Ilias(returning("lp_data", ""))
    assert ilias.client().learning_progress_changes("sid", "2026-11-20 10:00:00") == ""


def test_logout_ends_the_session_it_names() -> None:
    ilias = Ilias(returning("success", "true"))
    ilias.client().logout("abc::client")
    assert ilias.calls == [Call("logout", [("sid", f"{{{XSD}}}string", "abc::client")])]
    assert ilias.requests[0].headers["SOAPAction"] == f"{NS}#logout"


def test_a_false_flag_and_several_items_are_encoded_as_soap_expects() -> None:
    call = read_call(envelope("m", [("flag", False), ("types", ["crs", "grp"])]))
    assert call.parts == [
        ("flag", f"{{{XSD}}}boolean", "false"),
        ("types", f"{{{SOAP_ENC}}}Array", ["crs", "grp"]),
    ]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Session not valid", Transient),  # ILIAS's answer to an expired sid
        ("Session idled", Transient),
        ("Permission denied", Permanent),  # configuration: a person must act
    ],
)
def test_a_fault_over_http_500_is_ilias_answer_with_its_text(
    text: str, kind: type[Exception]
) -> None:
    ilias = Ilias(lambda call: httpx.Response(500, content=fault(text)))
    with pytest.raises(kind) as info:
        ilias.client().login("default", "u", "p")
    assert isinstance(info.value, Transient | Permanent)
    assert info.value.code == "ilias_fault" and info.value.message == f"ilias login: {text}"


def test_a_fault_without_text_is_permanent_and_invents_none() -> None:
    with pytest.raises(Permanent) as info:
        result(fault(None), "login", "sid")
    assert info.value.code == "ilias_fault" and info.value.message == "ilias login: "


def test_a_long_fault_text_is_cut_to_300_characters() -> None:
    with pytest.raises(Permanent) as info:
        result(fault("x" * 400), "login", "sid")
    assert info.value.message == "ilias login: " + "x" * 300


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (500, b"<html><title>Internal Server Error</title>default handler</html>", "http_500"),
        (503, b"Service Unavailable", "http_503"),
    ],
)
def test_an_error_status_without_a_soap_fault_is_an_http_error(
    status: int, body: bytes, code: str
) -> None:
    ilias = Ilias(lambda call: httpx.Response(status, content=body))
    with pytest.raises(Transient) as info:
        ilias.client().login("default", "u", "p")
    assert info.value.code == code and info.value.message.startswith(f"ilias login: HTTP {status}")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<html>maintenance", "ilias getLearningProgressChanges: response is not XML"),
        (
            answer("<ns1:otherResponse/>"),
            "ilias getLearningProgressChanges: no <lp_data> in the response",
        ),
    ],
)
def test_an_answer_without_the_result_is_a_bad_response(content: bytes, message: str) -> None:
    ilias = Ilias(lambda call: httpx.Response(200, content=content))
    with pytest.raises(Transient) as info:
        ilias.client().learning_progress_changes("sid", "2026-11-20 10:00:00")
    assert info.value.code == "ilias_bad_response" and info.value.message == message


def test_a_namespace_qualified_result_is_read_too() -> None:
    qualified = answer("<ns1:loginResponse><ns1:sid>abc::client</ns1:sid></ns1:loginResponse>")
    assert result(qualified, "login", "sid") == "abc::client"
