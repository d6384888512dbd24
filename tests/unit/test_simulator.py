"""The simulator's Coachview rules and admin API, in process."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

import coachview_sim
from coachview_sim.app import create_app
from coachview_sim.credentials import (
    CLIENT_ID,
    CLIENT_SECRET,
    RESULTLINK_PLUGIN_KEY,
    RESULTLINK_SECRET,
)
from coachview_sim.preconditions import MalformedIfMatch, if_match_holds, strong_etag

SEED = json.loads((Path(__file__).parent.parent / "fixtures" / "coachview-seed.json").read_text())
EC = "/api/v1/Opleidingsvraagonderdelen"
PU = "/api/v1/Opleidingsonderdeeluitvoeringen"
# RFC 9110 §8.8.3: a strong entity-tag is a quoted string of etagc, no W/ prefix.
STRONG_ETAG = re.compile(r'^"[\x21\x23-\x7e]*"$')


@pytest.fixture
def sim() -> TestClient:
    return authed(SEED)


def authed(seed: dict[str, Any]) -> TestClient:
    client = TestClient(create_app())
    client.post("/_sim/seed", json=seed).raise_for_status()
    token = client.post(
        "/auth/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    ).json()["access_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def row(
    sim: TestClient, person: int = 1001, component: int = 9001, path: str = EC
) -> dict[str, Any]:
    rows = sim.get(path, params={"where": f"persoonId={person};opleidingsonderdeelId={component}"})
    assert rows.status_code == 200
    (only,) = rows.json()
    return dict(only)


def put(
    sim: TestClient,
    ec: dict[str, Any],
    body: dict[str, Any],
    etag: str | None = None,
    path: str = EC,
) -> Any:
    headers = {"If-Match": etag or ec["auditTrail"]["etag"]}
    return sim.put(f"{path}/{ec['id']}", json=body, headers=headers)


def test_api_needs_a_valid_token() -> None:
    client = TestClient(create_app())
    assert client.get("/api/v1/Personen").status_code == 401
    bad = client.post(
        "/auth/connect/token",
        data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"


def test_where_filters_and_any_of(sim: TestClient) -> None:
    assert [
        p["id"] for p in sim.get("/api/v1/Personen", params={"where": "externId=58"}).json()
    ] == [1002]
    comps = sim.get("/api/v1/Opleidingsonderdelen", params={"where": "elearningCode=12,312"}).json()
    assert sorted(c["id"] for c in comps) == [9001, 9003]
    assert sim.get("/api/v1/Personen", params={"where": "shoe=1"}).status_code == 400
    assert sim.get("/api/v1/Personen/4242").status_code == 404


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("/api/v1/Personen", "id=1001,1003,1001"),
        ("/api/v1/Personen", "externId=57,EXT-0093;voornaam=Anna"),
        ("/api/v1/Personen", "achternaam=de Vries"),
        (EC, "persoonId=1001,1002;opleidingsonderdeelId=9001"),
        (EC, "id=1,2;akkoord=False"),
        (EC, "opleidingsonderdeelId=9002"),
        (PU, "persoonId=1001,1002;opleidingsonderdeelId=9001"),
        (PU, "opleidingsonderdeelId=9001,9003"),
        (PU, "id=100001,100003;aanwezig=False"),
    ],
)
def test_indexed_lookups_answer_as_a_full_scan_would(
    sim: TestClient, path: str, where: str
) -> None:
    everything = sim.get(path, params={"take": 1000}).json()
    conditions = [(f, v.split(",")) for f, _, v in (c.partition("=") for c in where.split(";"))]
    expected = [r for r in everything if all(str(r[f]) in vs for f, vs in conditions)]
    got = sim.get(path, params={"where": where}).json()
    assert sorted(got, key=lambda r: r["id"]) == sorted(expected, key=lambda r: r["id"])
    assert got  # every case matches something: an empty answer would prove nothing


def test_unknown_where_field_is_400_even_when_nothing_matches() -> None:
    answer = authed({}).get("/api/v1/Personen", params={"where": "shoe=1"})
    assert answer.status_code == 400
    assert "shoe" in answer.json()["detail"]


def test_seeding_a_person_again_replaces_it_in_lookups(sim: TestClient) -> None:
    sim.post("/_sim/seed", json={"persons": [{"id": 1002, "externId": "99"}]}).raise_for_status()
    by_old = sim.get("/api/v1/Personen", params={"where": "externId=58"}).json()
    by_new = sim.get("/api/v1/Personen", params={"where": "externId=99"}).json()
    assert by_old == []
    assert [p["id"] for p in by_new] == [1002]


def test_attendance_and_pass_are_locked_once_set(sim: TestClient) -> None:
    ec = row(sim, path=PU)
    ec = put(sim, ec, {"aanwezig": True, "geslaagd": True}, path=PU).json()
    assert put(sim, ec, {"aanwezig": False}, path=PU).status_code == 409
    assert put(sim, ec, {"geslaagd": False}, path=PU).status_code == 409


def test_each_entity_takes_only_its_own_fields(sim: TestClient) -> None:
    participation, request = row(sim, path=PU), row(sim)
    assert put(sim, participation, {"afgerond": True}, path=PU).status_code == 409
    assert put(sim, request, {"aanwezig": True}).status_code == 409


def test_one_write_of_several_fields_counts_each_field_once(sim: TestClient) -> None:
    body = {"resultaat": "8.5", "aanwezig": True, "geslaagd": True}
    assert put(sim, row(sim, path=PU), body, path=PU).status_code == 200
    body = {"afgerond": True, "akkoord": True, "datumAkkoord": "2026-11-20"}
    assert put(sim, row(sim), body).status_code == 200
    state = sim.get("/_sim/state").json()
    counted = next(r for r in state["enrolmentComponents"] if r["id"] == row(sim)["id"])
    assert counted["writes"] == dict.fromkeys(
        ("result", "attendance", "passed", "completed", "approved"), 1
    )
    assert (counted["result"], counted["approvalDate"]) == ("8.5", "2026-11-20")


def test_result_is_never_replaced(sim: TestClient) -> None:
    bram = row(sim, person=1002, path=PU)
    assert bram["resultaat"] == "6.0"
    response = put(sim, bram, {"resultaat": "9.0"}, path=PU)
    assert response.status_code == 409 and "not replaced" in response.text


def test_stale_etag_is_412_and_duplicate_writes_are_counted(sim: TestClient) -> None:
    ec = row(sim)
    old = ec["auditTrail"]["etag"]
    assert put(sim, ec, {"afgerond": True}).status_code == 200
    assert put(sim, ec, {"afgerond": True}, etag=old).status_code == 412
    fresh = row(sim)
    assert put(sim, fresh, {"afgerond": True}).status_code == 200
    state = sim.get("/_sim/state").json()
    counted = next(r for r in state["enrolmentComponents"] if r["id"] == ec["id"])
    assert counted["writes"]["completed"] == 2  # a duplicate write is visible


def test_approval_date_stored_and_validated(sim: TestClient) -> None:
    ec = row(sim)
    assert put(sim, ec, {"datumAkkoord": "20-11-2026"}).status_code == 409
    done = put(sim, ec, {"akkoord": True, "datumAkkoord": "2026-11-20"}).json()
    assert done["datumAkkoord"] == "2026-11-20"
    state = sim.get("/_sim/state").json()
    counted = next(r for r in state["enrolmentComponents"] if r["id"] == ec["id"])
    assert counted["approvalDate"] == "2026-11-20" and counted["writes"]["approved"] == 1


def test_state_counts_requests_by_route(sim: TestClient) -> None:
    sim.get("/api/v1/Personen/1001")
    sim.get("/api/v1/Personen/1002")
    requests = sim.get("/_sim/state").json()["requests"]
    assert requests["byRoute"]["GET /api/v1/Personen/{person_id}"] == 2
    assert requests["byRoute"]["POST /auth/connect/token"] == 1
    assert requests["total"] == 3


def test_faults_apply_to_api_routes_only(sim: TestClient) -> None:
    sim.post("/_sim/faults", json={"error_rate": 1.0, "error_status": 503}).raise_for_status()
    assert sim.get("/api/v1/Personen/1001").status_code == 503
    assert sim.get("/_sim/state").status_code == 200
    sim.post("/_sim/faults", json={}).raise_for_status()
    assert sim.get("/api/v1/Personen/1001").status_code == 200


def test_rate_limit_fault_answers_429_with_retry_after(sim: TestClient) -> None:
    sim.post("/_sim/faults", json={"rate_limit_per_s": 2}).raise_for_status()
    codes = [sim.get("/api/v1/Personen/1001").status_code for _ in range(4)]
    assert codes[:2] == [200, 200] and 429 in codes[2:]


def test_seed_rejects_dangling_references(sim: TestClient) -> None:
    bad = sim.post("/_sim/seed", json={"enrolments": [{"id": 1, "personId": 9, "trainingId": 501}]})
    assert bad.status_code == 422 and "personId" in bad.text
    assert sim.post("/_sim/seed", json={"people": []}).status_code == 422


def test_reset_empties_everything(sim: TestClient) -> None:
    sim.post("/_sim/reset").raise_for_status()
    assert sim.get("/_sim/state").json() == {
        "enrolmentComponents": [],
        "requests": {
            "total": 0,
            "byRoute": {},
            "rateLimited": 0,
            "maxPerSecond": 0,
            "earlyAfter429": 0,
        },
    }


def test_budget_headers_and_429_when_spent(sim: TestClient) -> None:
    # The window began with the fixture's token request: that counted too.
    sim.post("/_sim/config", json={"daily_budget": 4}).raise_for_status()
    first = sim.get("/api/v1/Personen/1001")
    assert first.headers["X-Rate-Limit-Limit"] == "4"
    assert first.headers["X-Rate-Limit-Remaining"] == "2"

    assert int(first.headers["X-Rate-Limit-Reset"]) > 1_000_000_000
    sim.get("/api/v1/Personen/1001")
    sim.get("/api/v1/Personen/1001")
    spent = sim.get("/api/v1/Personen/1001")
    assert spent.status_code == 429 and spent.headers["X-Rate-Limit-Remaining"] == "0"
    assert int(spent.headers["Retry-After"]) > 80_000
    assert sim.get("/_sim/state").json()["requests"]["rateLimited"] == 1


def test_budget_without_rate_limit_headers_still_refuses_when_spent(sim: TestClient) -> None:
    sim.post("/_sim/config", json={"daily_budget": 2, "rate_limit_headers": False})
    first = sim.get("/api/v1/Personen/1001")
    assert first.status_code == 200
    assert not [h for h in first.headers if h.lower().startswith("x-rate-limit")]
    spent = sim.get("/api/v1/Personen/1001")
    assert spent.status_code == 429 and int(spent.headers["Retry-After"]) > 80_000
    assert not [h for h in spent.headers if h.lower().startswith("x-rate-limit")]


def message(
    person: int | None = 1001, course: str = "12", grade: str = "8.5", extern: str | None = None
) -> bytes:
    """A result-link body, written out here rather than by the client's renderer."""
    learner = "" if extern is None else f"<ExternId>{extern}</ExternId>"
    learner += "" if person is None else f"<PersoonId>{person}</PersoonId>"
    return (
        "<?xml version='1.0' encoding='utf-8'?>\n<ElearningResultaat>"
        f"{learner}<Cursusnummer>{course}</Cursusnummer>"
        f"<Cijfer>{grade}</Cijfer><Aanwezig>true</Aanwezig><Geslaagd>true</Geslaagd>"
        "<Afgerond>true</Afgerond><DatumAfgerond>2026-11-20</DatumAfgerond></ElearningResultaat>"
    ).encode()


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha512).digest()).decode()


def result_link(sim: TestClient, body: bytes, secret: str = RESULTLINK_SECRET) -> Any:
    return sim.post(
        f"/elearning/result.aspx?plugin={RESULTLINK_PLUGIN_KEY}",
        content=body,
        headers={"X-WebHook-Signature": sign(body, secret)},
    )


def test_result_link_applies_six_effects_once(sim: TestClient) -> None:
    body = message()
    assert result_link(sim, body).status_code == 200
    assert result_link(sim, body).status_code == 200  # sent twice: Coachview's rules skip
    state = sim.get("/_sim/state").json()
    row = next(
        r
        for r in state["enrolmentComponents"]
        if r["enrolmentId"] == 7001 and r["componentId"] == 9001
    )
    assert row["result"] == "8.5" and row["approvalDate"] == "2026-11-20"
    assert row["writes"] == {
        "result": 1,
        "attendance": 1,
        "passed": 1,
        "completed": 1,
        "approved": 1,
    }
    assert state["requests"]["byRoute"]["POST /elearning/result.aspx"] == 2


def test_result_link_keeps_an_existing_result(sim: TestClient) -> None:
    assert result_link(sim, message(person=1002, grade="9")).status_code == 200
    assert row(sim, person=1002, path=PU)["resultaat"] == "6.0"
    assert row(sim, person=1002)["akkoord"] is True


def test_result_link_status_codes(sim: TestClient) -> None:
    assert result_link(sim, message(person=4242)).status_code == 404
    assert result_link(sim, message(course="312")).status_code == 404  # Anna is not on BHV
    assert result_link(sim, message(), secret="wrong").status_code == 403
    assert result_link(sim, b"<nope/>").status_code == 400
    assert sim.get("/elearning/result.aspx").status_code == 405
    unknown_plugin = sim.post("/elearning/result.aspx?plugin=x", content=message())
    assert unknown_plugin.status_code == 403


def test_result_link_matches_extern_id_first_then_person_id(sim: TestClient) -> None:
    # Anna (1001) has externId 57, Bram (1002) 58, Chloë (1003) EXT-0093.
    assert result_link(sim, message(person=None, extern="57")).status_code == 200
    assert row(sim, person=1001)["akkoord"] is True
    # ExternId wins over a PersoonId naming someone else: Bram's row stays untouched.
    assert (
        result_link(sim, message(person=1002, extern="EXT-0093", course="312")).status_code == 200
    )
    assert row(sim, person=1002)["akkoord"] is False
    # An ExternId no one has falls back to the PersoonId.
    assert result_link(sim, message(person=1002, extern="nobody")).status_code == 200
    assert row(sim, person=1002)["akkoord"] is True
    assert result_link(sim, message(person=None, extern="nobody")).status_code == 404
    no_learner = result_link(sim, message(person=None))
    assert no_learner.status_code == 400 and "ExternId or PersoonId" in no_learner.text


def test_result_link_refuses_non_ascii_plugin_or_signature_with_403(sim: TestClient) -> None:
    body = message()
    odd = "é".encode("latin-1")  # as a header can carry it: raw latin-1 bytes
    signed_odd = sim.post(
        f"/elearning/result.aspx?plugin={RESULTLINK_PLUGIN_KEY}",
        content=body,
        headers={"X-WebHook-Signature": odd},
    )
    assert signed_odd.status_code == 403
    assert sim.post("/elearning/result.aspx?plugin=é", content=body).status_code == 403


# -- the simulator's own wire names ------------------------------------------------------------


def test_simulator_imports_nothing_from_gradesync() -> None:
    """Shared names would let a wrong guess in the client pass every test (issue 10, item 8)."""
    package = Path(coachview_sim.__file__).parent
    imported: list[str] = []
    for source in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                imported += [f"{source.name}: {a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.append(f"{source.name}: {node.module}")
    assert [m for m in imported if m.split(": ")[1].split(".")[0] == "gradesync"] == []
    # Also at run time, which catches importlib and anything imported indirectly.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, coachview_sim.app; print(sorted(m for m in sys.modules"
            " if m.split('.')[0] == 'gradesync'))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert loaded.stdout.strip() == "[]"


# -- If-Match as RFC 9110 §13.1.1 has it: required, strong comparison ----------------------------


def test_put_without_if_match_is_428_and_writes_nothing(sim: TestClient) -> None:
    ec = row(sim)
    answer = sim.put(f"{EC}/{ec['id']}", json={"afgerond": True})
    assert answer.status_code == 428 and "If-Match" in answer.json()["detail"]
    assert row(sim)["afgerond"] is False
    assert put(sim, ec, {"afgerond": True}).status_code == 200  # with it, the write goes in


def test_etags_are_strong_and_also_in_the_etag_header(sim: TestClient) -> None:
    ec = row(sim)
    etag = ec["auditTrail"]["etag"]
    assert STRONG_ETAG.match(etag), etag
    one = sim.get(f"{EC}/{ec['id']}")
    assert one.headers["ETag"] == one.json()["auditTrail"]["etag"] == etag
    written = put(sim, ec, {"afgerond": True})
    new = written.json()["auditTrail"]["etag"]
    assert written.headers["ETag"] == new != etag and STRONG_ETAG.match(new)


def test_a_weak_etag_never_matches(sim: TestClient) -> None:
    ec = row(sim)
    weak = "W/" + ec["auditTrail"]["etag"]
    assert put(sim, ec, {"afgerond": True}, etag=weak).status_code == 412
    assert row(sim)["afgerond"] is False


@pytest.mark.parametrize(
    "if_match",
    [
        "{current}",
        '"0-0", {current}',
        '"0-0",{current} , "9-9"',
        ", {current},",  # empty list elements are allowed
        "*",
    ],
)
def test_if_match_lists_and_star_match_the_current_etag(sim: TestClient, if_match: str) -> None:
    ec = row(sim)
    header = if_match.format(current=ec["auditTrail"]["etag"])
    assert put(sim, ec, {"afgerond": True}, etag=header).status_code == 200


@pytest.mark.parametrize(
    ("if_match", "status"),
    [
        ('"0-0", "9-9"', 412),
        ('W/{current}, W/"0-0"', 412),
        ("{bare}", 400),  # unquoted: not an entity-tag
        ("{current} junk", 400),
        ("**", 400),
    ],
)
def test_if_match_that_does_not_hold_or_does_not_parse(
    sim: TestClient, if_match: str, status: int
) -> None:
    ec = row(sim)
    etag = ec["auditTrail"]["etag"]
    header = if_match.format(current=etag, bare=etag.strip('"'))
    answer = put(sim, ec, {"afgerond": True}, etag=header)
    assert answer.status_code == status and "If-Match" in answer.json()["detail"]
    assert row(sim)["afgerond"] is False


def test_star_does_not_conjure_a_missing_row(sim: TestClient) -> None:
    assert (
        sim.put(f"{EC}/424242", json={"afgerond": True}, headers={"If-Match": "*"}).status_code
        == 404
    )


# -- the simulator says what it is ---------------------------------------------------------------


def test_every_response_identifies_the_simulator(sim: TestClient) -> None:
    app = sim.app
    assert isinstance(app, FastAPI)

    @app.get("/_sim/crash-for-test")
    def crash() -> None:
        raise RuntimeError("boom")

    raw = TestClient(app, raise_server_exceptions=False)
    raw.headers.update(sim.headers)
    ec = row(sim)
    answers = [
        raw.post("/auth/connect/token", data={"grant_type": "client_credentials"}),  # 422
        raw.post(
            "/auth/connect/token",
            data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
        ),
        raw.get("/api/v1/Personen", params={"where": "externId=57"}),
        raw.get("/api/v1/Personen/4242"),
        raw.get("/api/v1/Personen/1001", headers={"Authorization": "Bearer nope"}),
        raw.get(f"{EC}/{ec['id']}"),
        raw.put(f"{EC}/{ec['id']}", json={"afgerond": True}),
        raw.get("/no/such/route"),
        result_link(raw, message()),
        result_link(raw, message(), secret="wrong"),
        raw.get("/elearning/result.aspx"),
        raw.get("/_sim/state"),
        raw.post("/_sim/seed", json={"people": []}),
        raw.get("/_sim/crash-for-test"),
    ]
    raw.post("/_sim/faults", json={"error_rate": 1.0}).raise_for_status()
    answers.append(raw.get("/api/v1/Personen/1001"))
    raw.post("/_sim/faults", json={"rate_limit_per_s": 1}).raise_for_status()
    answers += [raw.get("/api/v1/Personen/1001") for _ in range(2)]
    statuses = {a.status_code for a in answers}
    assert {200, 400, 401, 403, 404, 405, 422, 428, 429, 500, 503} <= statuses
    for answer in answers:
        assert answer.headers.get("X-Gradesync-Simulator") == "1", answer.request.url


OPAQUE = st.text(alphabet=st.sampled_from([chr(0x21), *map(chr, range(0x23, 0x7F))]), max_size=12)


@given(
    others=st.lists(OPAQUE.map(strong_etag), max_size=4),
    position=st.integers(min_value=0, max_value=4),
    weak=st.booleans(),
    separator=st.sampled_from([",", ", ", " ,\t", " , , "]),
)
def test_if_match_holds_exactly_when_the_current_etag_is_listed_strong(
    others: list[str], position: int, weak: bool, separator: str
) -> None:
    current = strong_etag("1-1")
    tags = [t for t in others if t != current]
    tags.insert(min(position, len(tags)), ("W/" if weak else "") + current)
    assert if_match_holds([separator.join(tags)], current) is not weak
    assert if_match_holds(tags, current) is not weak  # the same list over several header lines


@given(header=st.one_of(st.text(max_size=40), st.text(alphabet='"W/1-, *\t', max_size=20)))
def test_any_if_match_text_is_refused_as_malformed_or_holds_only_for_the_current_tag(
    header: str,
) -> None:
    current = strong_etag("1-1")
    try:
        holds = if_match_holds([header], current)
    except MalformedIfMatch:
        return  # the route answers 400 naming If-Match
    if holds:
        assert header.strip() == "*" or re.search(r'(^|[^/])"1-1"', header), header
