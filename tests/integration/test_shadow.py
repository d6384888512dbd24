"""Shadow mode over real processes (issue 13 part 2): `gradesync enqueue` with
COACHVIEW_DELIVERY=shadow, the session's worker (configured for rest: the record's mode decides,
not the worker's), the simulator; then `gradesync retry --state shadowed` with delivery switched
on, compared with a direct delivery of the same completions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gradesync.record import Record
from tests.integration.conftest import FIXTURES, Stack, canonical, gradesync

TOKEN_ROUTE = "POST /auth/connect/token"
# Anna: no result yet, a completion late in the evening (UTC) → the next day in Amsterdam.
# Bram: Coachview already holds his result (6.0): first result wins, the rest is written.
# Person 77: no Coachview person has this id: what the administrator learns from shadow.
EVENTS = {
    "anna": {"event_id": "s-1", "completed_at": "2026-11-20T23:30:00Z"},
    "bram": {"event_id": "s-2", "person_id": "58", "grade": "9.0"},
    "nobody": {"event_id": "s-3", "person_id": "77"},
}


def enqueue_file(tmp_path: Path) -> Path:
    base = json.loads((FIXTURES / "canonical.json").read_text())
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps(base | e) + "\n" for e in EVENTS.values()))
    return path


def writes_sent(stack: Stack) -> dict[str, int]:
    """Every request to Coachview that could change it: any PUT, any POST but the token's."""
    routes: dict[str, int] = stack.state()["requests"]["byRoute"]
    return {r: n for r, n in routes.items() if r.split()[0] != "GET" and r != TOKEN_ROUTE}


def settle_all(stack: Stack) -> dict[str, Record]:
    return {name: stack.settle(canonical(**e).key.id, timeout=60) for name, e in EVENTS.items()}


def test_a_shadow_run_then_real_delivery_equals_a_direct_delivery(
    clean: Stack, tmp_path: Path
) -> None:
    # -- the direct delivery, for reference ---------------------------------------------------
    clean.seed()
    for e in EVENTS.values():
        clean.enqueue(canonical(**e), "rest")
    direct = settle_all(clean)
    assert [r.state for r in direct.values()] == ["delivered", "delivered", "unresolved"]
    reference = clean.state()["enrolmentComponents"]

    # -- shadow: reads only, every record shadowed, its would-be writes in history -----------
    clean.reset()
    clean.seed()
    done = gradesync("enqueue", str(enqueue_file(tmp_path)), COACHVIEW_DELIVERY="shadow")
    assert done.returncode == 0, done.stderr
    shadow = settle_all(clean)
    assert {name: r.state for name, r in shadow.items()} == dict.fromkeys(EVENTS, "shadowed")
    assert all(r.delivery == "shadow" for r in shadow.values())
    state = clean.state()
    assert all(set(row["writes"].values()) == {0} for row in state["enrolmentComponents"]), state
    assert writes_sent(clean) == {}
    assert state["requests"]["byRoute"], "shadow reads the real Coachview"

    anna = clean.ledger.history(shadow["anna"].id)
    planned = [(h["step"], h.get("writes")) for h in anna if h["what"] == "would_write"]
    assert planned == [
        (
            "participation",
            [
                {"field": "result", "old": None, "new": "8.5"},
                {"field": "attendance", "old": False, "new": True},
                {"field": "passed", "old": False, "new": True},
            ],
        ),
        (
            "request_component",
            [
                {"field": "completed", "old": False, "new": True},
                {"field": "approved", "old": False, "new": True},
                {"field": "approval_date", "old": None, "new": "2026-11-21"},
            ],
        ),
    ]
    assert anna[-1]["what"] == "shadowed" and anna[-1]["approval_date"] == "2026-11-21"
    bram = clean.ledger.history(shadow["bram"].id)
    kept = [h["note"] for h in bram if "note" in h]
    assert kept == [kept[0] | {"code": "result_kept_existing", "existing": "6.0"}]
    nobody = shadow["nobody"]
    assert nobody.last_error is not None and nobody.last_error.code == "unknown_person"
    assert nobody.next_attempt is None and nobody.daily_retries == 0

    report: dict[str, Any] = json.loads(gradesync("report", "--json").stdout)
    assert report["counts"]["shadowed"] == 3 and report["would_deliver"] == 2
    assert [(g["reason"], g["shadowed"], g["days_left"]) for g in report["groups"]] == [
        ("unknown_person", 1, 30)
    ]
    shown = json.loads(gradesync("show", shadow["anna"].id, "--json").stdout)
    assert shown["state"] == "shadowed" and shown["delivery"] == "shadow"

    # -- switched on: the shadowed records delivered, as a direct delivery would have --------
    done = gradesync("retry", "--state", "shadowed", "--json", COACHVIEW_DELIVERY="rest")
    assert json.loads(done.stdout)["queued"] == 3, done.stderr
    real = settle_all(clean)
    assert [r.state for r in real.values()] == ["delivered", "delivered", "unresolved"]
    assert clean.state()["enrolmentComponents"] == reference  # approval dates included
    for name, record in real.items():
        # Shadow runs counted for nothing: one attempt, the daily window from now.
        assert (record.attempts, record.daily_retries, record.delivery) == (1, 0, "rest"), name
        assert record.event.completed_at == direct[name].event.completed_at
    assert real["nobody"].next_attempt is not None


def test_retry_delivers_shadowed_records_in_the_mode_configured_now(
    clean: Stack, tmp_path: Path
) -> None:
    clean.seed()
    done = gradesync("enqueue", str(enqueue_file(tmp_path)), COACHVIEW_DELIVERY="shadow")
    assert done.returncode == 0, done.stderr
    settle_all(clean)
    assert writes_sent(clean) == {}

    done = gradesync("retry", "--state", "shadowed", COACHVIEW_DELIVERY="resultlink")
    assert done.returncode == 0 and "queued 3 of 3 matching shadowed" in done.stdout
    real = settle_all(clean)
    assert [r.state for r in real.values()] == ["delivered", "delivered", "unresolved"]
    assert clean.ledger.steps(real["anna"].id)[-1] == "result_link"
    # Two delivered; the third POST is Coachview's 404 (the result link looks nothing up first).
    assert writes_sent(clean) == {"POST /elearning/result.aspx": 3}
    assert clean.component(7001, 9001)["approvalDate"] == "2026-11-21"
