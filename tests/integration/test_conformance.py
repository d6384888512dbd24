"""The conformance corpus (tests/conformance, issue 23) played through the real processes: the
fake LMS (tests/fakes/lms.py) serves each answer literally, the real ingress takes each
sender's payload, the worker fetches and the simulator is written. tests/conformance/README.md
says where each file comes from; the tables below say what each must produce."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gradesync.procs import BIN, Proc, free_port, wait_until
from gradesync.record import Record
from producers.signatures import standard_signature
from tests.conftest import SECRETS
from tests.integration.conftest import Stack, canonical, gradesync

CORPUS = Path(__file__).resolve().parent.parent / "conformance"
DONE_AT = 1795128000  # 2026-11-19 23:40 Amsterdam: the criteria's time Moodle reports
COURSE, ENROLMENT_BASE, COMPONENT = "12", 8000, 9001  # training 501 of the seed

# gradereport_user_get_grade_items' course total → what Coachview's result must be, under the
# default grade_format (dutch, "."): a grade from the number, or grade_unavailable and nothing
# written when the total is not a grade.
GRADE_CASES: dict[str, tuple[str, str | None]] = {
    "81": ("grade-items-80.json", "8.2"),  # Moodle's own test: 80 of 0–100 → 1 + 9 × 0.8
    "82": ("grade-items-pass-icon.json", "8.2"),  # icon HTML before the number
    "83": ("grade-items-letter.json", "8.2"),  # "B-" shown, 80 stored
    "84": ("grade-items-percentage.json", "8.2"),  # "80.00 %" shown
    "85": ("grade-items-needsupdate.json", None),  # "Error"
    "86": ("grade-items-hidden.json", None),  # "-"
    "87": ("grade-items-hidden-by-date.json", None),  # a date
}
# core_completion_get_course_completion_status answering an exception: the webhook proved the
# completion, so its own time stands in and the grade still comes from the grade report.
FALLBACK_CASES = {
    "91": "usernotenroled",
    "92": "nocriteriaset",
    "93": "cannotviewreport",
}
LEARNERS = [*GRADE_CASES, *FALLBACK_CASES, "94", "95", "96", "97", "75", "76"]


def corpus(*path: str) -> Any:
    return json.loads(CORPUS.joinpath(*path).read_text())["payload"]


def enrolment(user: str) -> int:
    return ENROLMENT_BASE + int(user)


def seed(stack: Stack) -> None:
    stack.seed()
    stack.seed(
        {
            "persons": [
                {"id": 3000 + int(u), "externId": u, "firstName": "C", "lastName": u}
                for u in LEARNERS
            ],
            "enrolments": [
                {"id": enrolment(u), "personId": 3000 + int(u), "trainingId": 501} for u in LEARNERS
            ],
        }
    )


def completed_in_moodle(stack: Stack, *users: str) -> None:
    entries = {f"{COURSE}/{u}": {"completed": True, "criteria": [DONE_AT]} for u in users}
    stack.lms.post("/_fake/moodle", json=entries).raise_for_status()


def serve(stack: Stack, function: str, user: str, answer: Any) -> None:
    key = f"{function}/{COURSE}/{user}"
    stack.lms.post("/_fake/moodle_raw", json={key: answer}).raise_for_status()


def local_webhooks(user: str, objectid: int) -> dict[str, Any]:
    body: dict[str, Any] = corpus("moodle", "local_webhooks-course_completed.json")
    return {**body, "relateduserid": user, "objectid": objectid, "other": {"relateduserid": user}}


def post(stack: Stack, body: bytes, content_type: str = "application/json") -> str:
    answer = stack.api.post("/events/moodle", content=body, headers={"content-type": content_type})
    assert answer.status_code == 202, answer.text
    rid: str = answer.json()["key"]
    return rid


def test_the_grade_is_moodles_number_and_a_total_that_is_no_grade_waits(clean: Stack) -> None:
    seed(clean)
    completed_in_moodle(clean, *GRADE_CASES)
    rids = {}
    for n, (user, (name, _)) in enumerate(GRADE_CASES.items()):
        serve(clean, "gradereport_user_get_grade_items", user, corpus("moodle", name))
        rids[user] = post(clean, json.dumps(local_webhooks(user, 900 + n)).encode())
    for user, (name, expected) in GRADE_CASES.items():
        record = clean.settle(rids[user])
        row = clean.component(enrolment(user), COMPONENT)
        if expected is None:
            assert record.state == "unresolved", (name, record)
            assert record.last_error is not None and record.last_error.code == "grade_unavailable"
            assert record.next_attempt is not None  # the daily retry
            assert row["result"] is None and row["writes"]["approved"] == 0, name
        else:
            assert record.state == "delivered", (name, record.last_error)
            assert row["result"] == expected, name


def test_a_completion_the_webhook_proved_is_never_failed_for_moodles_view(clean: Stack) -> None:
    seed(clean)
    completed_in_moodle(clean, *FALLBACK_CASES, "94")  # the users exist (the raw answers rule)
    grade_items = corpus("moodle", "grade-items-80.json")
    rids = {}
    for n, (user, code) in enumerate(FALLBACK_CASES.items()):
        answer = corpus("moodle", f"completion-status-{code}.json")
        serve(clean, "core_completion_get_course_completion_status", user, answer)
        serve(clean, "gradereport_user_get_grade_items", user, grade_items)
        rids[user] = post(clean, json.dumps(local_webhooks(user, 920 + n)).encode())
    # 94: unenrolled, and the grade report will not answer either: the grade policy decides
    unenrolled = corpus("moodle", "completion-status-usernotenroled.json")
    serve(clean, "core_completion_get_course_completion_status", "94", unenrolled)
    serve(clean, "gradereport_user_get_grade_items", "94", unenrolled)
    rids["94"] = post(clean, json.dumps(local_webhooks("94", 930)).encode())
    for user, code in FALLBACK_CASES.items():
        record = clean.settle(rids[user])
        assert record.state == "delivered", (code, record.last_error)
        assert record.completed_at_source == "event"
        assert any(code in str(h.get("note", "")) for h in clean.ledger.history(rids[user]))
        assert clean.component(enrolment(user), COMPONENT)["result"] == "8.2"
    record = clean.settle(rids["94"])
    assert record.state == "unresolved" and record.last_error is not None
    assert record.last_error.code == "grade_unavailable"


def test_the_senders_that_exist(clean: Stack) -> None:
    seed(clean)
    completed_in_moodle(clean, "95", "96")
    for user in ("95", "96"):
        serve(
            clean, "gradereport_user_get_grade_items", user, corpus("moodle", "grade-items-80.json")
        )
    # local_webhooks' other content type: the body is still JSON
    form = post(
        clean,
        json.dumps(local_webhooks("95", 940)).encode(),
        "application/x-www-form-urlencoded",
    )
    # local_webhookengine: its envelope, signed per Standard Webhooks with the plugin's secret
    envelope: dict[str, Any] = corpus("moodle", "webhookengine-course_completed.json")
    envelope["event"] = {**envelope["event"], "relateduserid": "96", "objectid": 941}
    body, stamp = json.dumps(envelope).encode(), str(int(time.time()))
    signed = clean.api.post(
        "/events/moodle",
        content=body,
        headers={
            "content-type": "application/json",
            "webhook-id": envelope["id"],
            "webhook-timestamp": stamp,
            "webhook-signature": standard_signature(SECRETS["moodle"], envelope["id"], stamp, body),
        },
    )
    assert signed.status_code == 202, signed.text
    for user, rid in (("95", form), ("96", signed.json()["key"])):
        assert clean.settle(rid).state == "delivered", user
        assert clean.component(enrolment(user), COMPONENT)["result"] == "8.2"
    # an event that is not a completion: 2xx, nothing recorded
    viewed = json.dumps(corpus("moodle", "local_webhooks-course_viewed.json")).encode()
    other = clean.api.post("/events/moodle", content=viewed, headers={"content-type": "text/plain"})
    assert other.status_code == 415  # a type no plugin sends
    ignored = clean.api.post(
        "/events/moodle", content=viewed, headers={"content-type": "application/json"}
    )
    assert ignored.status_code == 202 and "ignored" in ignored.json()


def test_an_implausible_completion_is_recorded_failed_not_refused(clean: Stack) -> None:
    """A 4xx is final for both Moodle webhook plugins: the completion is a failed record with
    the reason, in gradesync report, instead of being lost."""
    seed(clean)
    future = int(time.time()) + 10 * 86400
    body = {**local_webhooks("97", 970), "timecreated": future}
    answer = clean.api.post("/events/moodle", json=body)
    assert answer.status_code == 202 and answer.json()["state"] == "failed", answer.text
    clean.wait_idle()
    record = clean.ledger.get(answer.json()["key"])
    assert record is not None and record.state == "failed" and record.last_error is not None
    assert record.last_error.code == "implausible_event"
    assert f"timecreated {future}" in record.last_error.message
    assert clean.component(enrolment("97"), COMPONENT)["writes"]["result"] == 0  # nothing sent
    report = gradesync("report", "--json")
    assert report.returncode == 0 and "implausible_event" in report.stdout, report.stdout
    # checked in Moodle, an operator retries it: Moodle's own time and grade, not the webhook's
    completed_in_moodle(clean, "97")
    serve(clean, "gradereport_user_get_grade_items", "97", corpus("moodle", "grade-items-80.json"))
    assert gradesync("retry", answer.json()["key"]).returncode == 0
    assert clean.settle(answer.json()["key"]).state == "delivered"
    row = clean.component(enrolment("97"), COMPONENT)
    assert (row["result"], row["approvalDate"]) == ("8.2", "2026-11-19")  # DONE_AT's date


def test_anewspring_xml_webhook_and_the_grade_from_get_results(clean: Stack) -> None:
    clean.seed()
    (course,) = corpus("anewspring", "getResults.json")["courses"]
    clean.lms.post("/_fake/anewspring", json={"12/57": course}).raise_for_status()
    body = (CORPUS / "anewspring" / "webhook-completed.xml").read_bytes()
    answer = clean.post_anewspring(body, "text/xml; charset=UTF-8")
    assert answer.status_code == 202, answer.text
    record: Record = clean.settle(answer.json()["key"])
    assert record.state == "delivered", record.last_error
    assert clean.component(7001, 9001)["result"] == "7.9"  # "7.85" on 1–10, one decimal half up
    assert "anewspring:getResults" in clean.lms.get("/_fake/calls").json()


def test_the_learner_is_who_coachview_provisioned_into_the_id_number(clean: Stack) -> None:
    """Coachview's Moodle provisioning writes its ExternId into Moodle's ID number. Moodle user
    75 is ExternId CV-75 (Coachview person 3075); Coachview's PersoonId 75 is someone else,
    enrolled too: matching Moodle's internal id wrote 75's result onto that other person."""
    seed_with_externids(clean)
    entry = {"completed": True, "criteria": [DONE_AT]}
    clean.lms.post(
        "/_fake/moodle",
        json={
            f"{COURSE}/75": {**entry, "idnumber": "CV-75"},
            f"{COURSE}/76": {**entry, "idnumber": None},
        },
    ).raise_for_status()
    for user in ("75", "76"):
        serve(
            clean, "gradereport_user_get_grade_items", user, corpus("moodle", "grade-items-80.json")
        )
    provisioned = clean.settle(post(clean, json.dumps(local_webhooks("75", 960)).encode()))
    assert provisioned.state == "delivered", provisioned.last_error
    assert clean.component(enrolment("75"), COMPONENT)["result"] == "8.2"
    assert clean.component(8200, COMPONENT)["writes"]["result"] == 0  # PersoonId 75 untouched
    # a token that may not see ID numbers: said, never an empty value taken for "not set"
    hidden = clean.settle(post(clean, json.dumps(local_webhooks("76", 961)).encode()))
    assert hidden.state == "failed" and hidden.last_error is not None
    assert hidden.last_error.code == "moodle_field_not_readable"
    assert "moodle/user:viewalldetails" in hidden.last_error.message
    # doctor cannot ask Moodle whether the token sees ID numbers (tests/unit/test_doctor.py)


def seed_with_externids(stack: Stack) -> None:
    """The learners of :func:`seed`, 75 known to Coachview as CV-75, and PersoonId 75 another
    person enrolled on the same training."""
    stack.seed()
    people = [u for u in LEARNERS if u != "75"]
    stack.seed(
        {
            "persons": [
                *(
                    {"id": 3000 + int(u), "externId": u, "firstName": "C", "lastName": u}
                    for u in people
                ),
                {"id": 3075, "externId": "CV-75", "firstName": "C", "lastName": "75"},
                {"id": 75, "externId": "someone-else", "firstName": "O", "lastName": "x"},
            ],
            "enrolments": [
                *(
                    {"id": enrolment(u), "personId": 3000 + int(u), "trainingId": 501}
                    for u in LEARNERS
                ),
                {"id": 8200, "personId": 75, "trainingId": 501},
            ],
        }
    )


def test_a_worker_never_writes_on_coachviews_example_values(clean: Stack) -> None:
    """Coachview without the Personen scope answers the example person to every look-up (the
    simulator's example_values mode): the record fails naming the scope, nothing is written."""
    clean.seed()
    clean.config(example_values=True)
    rid = clean.enqueue(canonical(event_id="example-values", grade="8"))
    record = clean.settle(rid)
    assert record.state == "failed" and record.last_error is not None, record
    assert record.last_error.code == "coachview_example_values"
    assert "Personen.Lezen" in record.last_error.message
    assert all(sum(r["writes"].values()) == 0 for r in clean.state()["enrolmentComponents"])


@pytest.fixture
def disabled_ingress(clean: Stack) -> Iterator[httpx.Client]:
    """A second ingress on the session's Redis whose sources file has Moodle switched off."""
    path = clean.workdir / "sources-moodle-disabled.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "installations": [
                    {
                        "kind": "moodle",
                        "instance": "default",
                        "enabled": False,
                        "secret": SECRETS["moodle"],
                        "grade_policy": "completion_only",
                    }
                ]
            }
        )
    )
    port = free_port()
    env = {**os.environ, "GRADESYNC_SOURCES": str(path)}
    proc = Proc(
        "api-disabled", [str(BIN / "gradesync"), "api", "--port", str(port)], clean.workdir, env
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        wait_until(lambda: client.get("/healthz").is_success, timeout=30)
        yield client
    finally:
        proc.stop()


def test_a_disabled_installation_asks_its_senders_to_come_back(
    clean: Stack, disabled_ingress: httpx.Client
) -> None:
    body = json.dumps(local_webhooks("57", 950)).encode()
    answer = disabled_ingress.post(
        "/events/moodle", content=body, headers={"content-type": "application/json"}
    )
    # 503, not 403: local_webhookengine treats a 4xx as final, and nothing is recorded meanwhile
    assert answer.status_code == 503 and answer.headers["retry-after"] == "900"
    assert answer.json()["error"] == "installation_disabled"
    assert sum(clean.ledger.counts().values()) == 0
