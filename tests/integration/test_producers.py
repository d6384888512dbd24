"""Native LMS payloads → ingress → real worker → simulator, grades fetched from a fake LMS."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gradesync.ledger import utcnow
from gradesync.lms.ilias import IliasSoap
from gradesync.lms.ilias_poller import poll
from gradesync.settings import Settings
from gradesync.sources import IliasSource
from producers.signatures import anewspring_signature, standard_signature
from tests.conftest import LMS, SECRETS
from tests.integration.conftest import Stack
from workers.pipeline import enqueue

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ALL_ONCE = {"result": 1, "attendance": 1, "passed": 1, "completed": 1, "approved": 1}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def signed(source: str, body: bytes, msg_id: str = "msg-1") -> dict[str, str]:
    ts = str(int(time.time()))
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": standard_signature(SECRETS[source], msg_id, ts, body),
    }


def test_moodle_webhook_with_grade_from_moodle_ws(clean: Stack) -> None:
    clean.seed()
    clean.lms.post(
        "/_fake/moodle",
        json={
            "12/57": {"graderaw": 8.5, "grademax": 10, "gradeformatted": "8,50", "completed": True}
        },
    )
    body = (FIXTURES / "moodle-local_webhooks-course_completed.json").read_bytes()
    first = clean.api.post(
        "/events/moodle", content=body, headers={"content-type": "application/json"}
    )
    assert first.status_code == 202, first.text
    again = clean.api.post(
        "/events/moodle", content=body, headers={"content-type": "application/json"}
    )
    assert again.status_code == 200 and again.json() == {
        **first.json(),
        "state": again.json()["state"],
    }
    record = clean.settle(first.json()["key"])
    assert record.state == "delivered", record
    assert clean.ledger.steps(record.id)[0] == "lms"
    row = clean.component(7001, 9001)
    assert row["result"] == "8.7" and row["writes"] == ALL_ONCE  # 1 + 9 × 8.5/10
    moment = datetime.fromtimestamp(json.loads(body)["timecreated"], UTC).astimezone(Settings().tz)
    assert row["approvalDate"] == moment.date().isoformat()
    calls = clean.lms.get("/_fake/calls").json()
    assert "moodle:gradereport_user_get_grade_items" in calls
    assert "moodle:core_completion_get_course_completion_status" in calls


def test_moodle_other_events_and_bad_tokens(clean: Stack) -> None:
    body = fixture("moodle-local_webhooks-course_completed.json")
    other = {**body, "eventname": "\\core\\event\\course_viewed"}
    response = clean.api.post("/events/moodle", json=other)
    assert response.status_code == 202 and "ignored" in response.json()
    bad = clean.api.post("/events/moodle", json={**body, "token": "guess"})
    assert bad.status_code == 401 and bad.json()["error"] == "unauthenticated"
    assert sum(clean.ledger.counts().values()) == 0


def test_anewspring_webhook_with_grade_from_rest_api(clean: Stack) -> None:
    clean.seed()
    clean.lms.post(
        "/_fake/anewspring", json={"12/57": {"completed": True, "grade": "7.9", "passed": True}}
    )
    body = (FIXTURES / "anewspring-webhook.json").read_bytes()
    sig = anewspring_signature(SECRETS["anewspring"], body)
    headers = {"content-type": "application/json", "X-WebHook-Signature": sig}
    response = clean.api.post("/events/anewspring", content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert clean.settle(response.json()["key"]).state == "delivered"
    assert clean.component(7001, 9001)["result"] == "7.9"
    unsigned = clean.api.post(
        "/events/anewspring", content=body, headers={"content-type": "application/json"}
    )
    assert unsigned.status_code == 401


def test_ilias_poller_over_soap(clean: Stack) -> None:
    clean.seed()
    clean.seed({"enrolments": [{"id": 7004, "personId": 1001, "trainingId": 502}]})
    clean.lms.post(
        "/_fake/ilias", content=(FIXTURES / "ilias-getLearningProgressChanges.xml").read_bytes()
    )
    ilias = Settings().sources.typed(IliasSource)
    result = poll(
        IliasSoap(f"{LMS}/webservice/soap/server.php"), clean.ledger, ilias, utcnow(), enqueue
    )
    assert (result.completions, result.ignored) == (1, 2)  # LPStatus 1 and 3 are not completions
    again = poll(
        IliasSoap(f"{LMS}/webservice/soap/server.php"), clean.ledger, ilias, utcnow(), enqueue
    )
    assert again.completions == 1 and again.new == 0  # the overlap is deduplicated
    record = clean.ledger.newest()[0]
    assert clean.settle(record.id).state == "delivered"
    row = clean.component(7004, 9003)
    assert row["result"] is None and row["writes"] == {**ALL_ONCE, "result": 0}
    assert row["approvalDate"] == "2026-11-20"
    assert clean.redis.get("gs:cursor:ilias:default") is not None


def test_ilias_push_xapi_and_canonical_signed_per_standard_webhooks(clean: Stack) -> None:
    clean.seed()
    clean.seed({"enrolments": [{"id": 7004, "personId": 1001, "trainingId": 502}]})
    ilias = (FIXTURES / "ilias-updateStatus.json").read_bytes()
    response = clean.api.post("/events/ilias", content=ilias, headers=signed("ilias", ilias))
    assert response.status_code == 202, response.text
    assert clean.settle(response.json()["key"]).state == "delivered"
    assert clean.component(7004, 9003)["result"] == "7,5"

    xapi = (FIXTURES / "xapi-completed.json").read_bytes()
    response = clean.api.post("/events/xapi", content=xapi, headers=signed("xapi", xapi))
    assert response.status_code == 202, response.text
    assert clean.settle(response.json()["key"]).state == "delivered"
    assert clean.component(7001, 9001)["result"] == "8.5"

    canonical = json.dumps(
        {**fixture("canonical.json"), "person_id": "58", "event_id": "c-1"}
    ).encode()
    headers = signed("canonical", canonical, "msg-c1")
    response = clean.api.post("/events", content=canonical, headers=headers)
    assert response.status_code == 202
    other = canonical.replace(b'"c-1"', b'"c-2"')
    replay = clean.api.post("/events", content=other, headers=signed("canonical", other, "msg-c1"))
    assert replay.status_code == 409 and replay.json()["error"] == "replayed_id"
    assert clean.api.post("/events", content=canonical, headers=headers).status_code == 200


def test_backfill_csv_with_rejected_rows_file(clean: Stack, tmp_path: Path) -> None:
    import subprocess

    from gradesync.procs import BIN, ROOT

    clean.seed()
    csv_file = tmp_path / "history.csv"
    csv_file.write_text(
        "source,person_id,course_id,grade,completed_at\n"
        "moodle,57,12,8.0,2026-10-01T10:00:00+02:00\n"
        "moodle,58,12,,2026-10-02T10:00:00+02:00\n"
        "blackboard,59,12,7,2026-10-03T10:00:00\n"
    )
    run = subprocess.run(
        [str(BIN / "gradesync"), "backfill", str(csv_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1, run.stderr
    assert "3 rows: 2 accepted (0 already known), 1 rejected" in run.stdout
    rejected = (tmp_path / "history.rejected.csv").read_text()
    assert "blackboard" in rejected and "source" in rejected and "completed_at" in rejected
    for rec in clean.ledger.newest():
        assert clean.settle(rec.id).state == "delivered"
    assert clean.component(7001, 9001)["result"] == "8.0"
    assert clean.component(7002, 9001)["result"] == "6.0"
