"""The console in a real browser (Debian's headless chromium, driven by Playwright) over the
session's real processes: redis-server, the simulator, a worker and ``gradesync api``.

Set GRADESYNC_UPDATE_SCREENSHOT=1 to refresh the README's docs/console-needs-attention.png.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gradesync.procs import wait_until
from tests.conftest import API_PORT, CONSOLE_LOGIN
from tests.integration.conftest import Stack, canonical, gradesync

CHROMIUM = Path("/usr/bin/chromium")
BASE = f"http://127.0.0.1:{API_PORT}/console"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "console-needs-attention.png"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is absent: `apt-get install chromium` (.ci/run installs it)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright  # deferred: only where chromium exists

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="en-GB", viewport={"width": 1200, "height": 900})
    yield context.new_page()
    context.close()


def log_in(page: Any, path: str) -> None:
    """Open a console page, meet the login form (401), log in, land on the page."""
    answer = page.goto(f"{BASE}{path}")
    assert answer.status == 401
    page.fill('input[name="user"]', CONSOLE_LOGIN[0])
    page.fill('input[name="password"]', CONSOLE_LOGIN[1])
    page.click('form.login button[type="submit"]')
    page.wait_for_url(f"{BASE}{path}")


def test_an_administrator_sees_the_stuck_record_fixes_the_data_and_retries_to_delivery(
    clean: Stack, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    clean.seed()  # Coachview knows persons 57, 58 and EXT-0093; not 4242
    stuck = clean.enqueue(canonical(person_id="4242", course_id="12", event_id="console-1"))
    other = clean.enqueue(canonical(person_id="57", course_id="999", event_id="console-2"))
    for rid in (stuck, other):
        assert clean.settle(rid).state == "unresolved"

    log_in(page, "/attention")
    group = page.locator("#group-unknown_person")
    expect(group).to_contain_text("4242")
    expect(group.locator(".count")).to_have_text("1")
    expect(page.locator("#group-unknown_course")).to_contain_text("999")
    assert "8.5" not in page.content()  # the fixture's grade: on the record page only
    page.screenshot(path=str(tmp_path / "needs-attention.png"), full_page=True)
    if os.environ.get("GRADESYNC_UPDATE_SCREENSHOT") == "1":
        page.screenshot(path=str(SCREENSHOT), full_page=True)

    # The administrator fixes the data in Coachview: the person, enrolled on the training.
    clean.seed(
        {
            "persons": [{"id": 1042, "externId": "4242", "firstName": "Daan", "lastName": "Smit"}],
            "enrolments": [{"id": 7042, "personId": 1042, "trainingId": 501}],
        }
    )
    group.get_by_role("button", name=re.compile("Retry now")).click()
    expect(page.get_by_role("status")).to_contain_text("1 records queued again")

    page.goto(f"{BASE}/records/{stuck}")

    def delivered() -> bool:
        page.reload()
        return bool(page.locator("#state").get_attribute("data-state") == "delivered")

    wait_until(delivered, timeout=30, interval=0.5)
    expect(page.locator(".timeline")).to_contain_text("operator_retry")
    expect(page.locator(".timeline")).to_contain_text(f"by: {CONSOLE_LOGIN[0]}")
    expect(page.locator("dl")).to_contain_text("8.5")
    assert clean.ledger.get(other).state == "unresolved"  # type: ignore[union-attr]
    # `gradesync show` prints who retried it.
    shown = gradesync("show", stuck)
    assert shown.returncode == 0 and f'"by": "{CONSOLE_LOGIN[0]}"' in shown.stdout


def test_a_stranger_gets_401_and_a_forged_post_is_refused(clean: Stack, page: Any) -> None:
    clean.seed()
    rid = clean.enqueue(canonical(person_id="4242", course_id="12", event_id="console-3"))
    assert clean.settle(rid).state == "unresolved"
    with httpx.Client(base_url=BASE) as stranger:
        assert stranger.get("/").status_code == 401
        assert stranger.get(f"/records/{rid}").status_code == 401
        assert stranger.post(f"/records/{rid}/retry").status_code == 401

    log_in(page, f"/records/{rid}")
    # The browser's own cookies, but no CSRF token: what a forged cross-site form would send.
    forged = page.request.post(f"{BASE}/records/{rid}/retry", form={"x": "1"})
    assert forged.status == 403
    forged = page.request.post(f"{BASE}/attention/retry", form={"reason": "unknown_person"})
    assert forged.status == 403
    record = clean.ledger.get(rid)
    assert record is not None and record.state == "unresolved"
