"""The console in a real browser (Debian's headless chromium, driven by Playwright) over the
session's real processes: redis-server, the simulator, a worker and ``gradesync api``.

Set GRADESYNC_UPDATE_SCREENSHOT=1 to refresh the README's screenshots in docs/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.i18n import translator
from gradesync.procs import wait_until
from tests.conftest import API_PORT, CONSOLE_LOGIN
from tests.integration.conftest import Stack, canonical, gradesync

CHROMIUM = Path("/usr/bin/chromium")
BASE = f"http://127.0.0.1:{API_PORT}/console"
DOCS = Path(__file__).resolve().parents[2] / "docs"
# Per language: Needs attention, and the record once delivered (the README shows them).
SCREENSHOTS = {
    "en-GB": (DOCS / "console-needs-attention.png", DOCS / "console-record.png"),
    "nl-NL": (DOCS / "console-needs-attention-nl.png", DOCS / "console-record-nl.png"),
}

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


# What Python leaves on a page when a value is printed instead of worded.
REPR = ("{'", "[{", "None", "True", "False")


def plain(page: Any) -> str:
    """The page's visible text, asserted free of Python reprs."""
    text = str(page.locator("body").inner_text())
    for mark in REPR:
        assert mark not in text, f"{mark!r} on {page.url}:\n{text}"
    return text


def sim_data(*args: str) -> None:
    """The documented commands an administrator fixes the simulator's data with."""
    done = gradesync("sim-data", *args)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("locale", "person", "course"), [("en-GB", "4242", "999"), ("nl-NL", "4343", "998")]
)
def test_an_administrator_sees_the_stuck_record_fixes_the_data_and_retries_to_delivery(
    clean: Stack, browser: Any, tmp_path: Path, locale: str, person: str, course: str
) -> None:
    from playwright.sync_api import expect

    t = translator(locale[:2])
    page = browser.new_context(locale=locale, viewport={"width": 1200, "height": 900}).new_page()
    clean.seed()  # Coachview knows persons 57, 58 and EXT-0093; not this one
    stuck = clean.enqueue(canonical(person_id=person, course_id="12", event_id=f"c-{person}"))
    other = clean.enqueue(canonical(person_id="57", course_id=course, event_id=f"c-{course}"))
    for rid in (stuck, other):
        assert clean.settle(rid).state == "unresolved"

    log_in(page, "/attention")
    group = page.locator("#group-unknown_person")
    expect(group).to_contain_text(person)
    expect(group.locator("h2")).to_contain_text(t("unknown_person"))
    expect(group.locator(".fix")).to_have_text(t("fix_unknown_person"))
    expect(group.locator(".count")).to_have_text("1")
    expect(page.locator("#group-unknown_course")).to_contain_text(course)
    assert "8.5" not in plain(page)  # the fixture's grade: on the record page only
    page.screenshot(path=str(tmp_path / "needs-attention.png"), full_page=True)
    if os.environ.get("GRADESYNC_UPDATE_SCREENSHOT") == "1":
        page.screenshot(path=str(SCREENSHOTS[locale][0]), full_page=True)

    # The record, as the administrator opens it: the error in words and what to change.
    group.get_by_role("link", name=stuck[:12]).click()
    expect(page.locator("#error")).to_contain_text(t("fix_unknown_person"))
    plain(page)

    # The administrator fixes the data in Coachview (here: the simulator, by its commands):
    # the person with the LMS id as external id, enrolled on the training; the course id on
    # the training's second component.
    sim_data("person", person, "--first-name", "Daan", "--last-name", "Smit")
    sim_data("enrol", person, "501")
    sim_data("course", "9002", course)
    page.locator("#retry").click()
    expect(page.get_by_role("status")).to_have_text(t("done_retry"))
    assert page.locator("#error").count() == 0  # the old error waits in history only

    def delivered() -> bool:
        page.reload()
        return bool(page.locator("#state").get_attribute("data-state") == "delivered")

    wait_until(delivered, timeout=30, interval=0.5)
    text = plain(page)
    expect(page.locator(".timeline")).to_contain_text(t("h_operator_retry", by=CONSOLE_LOGIN[0]))
    expect(page.locator(".timeline")).to_contain_text(t("h_delivered"))
    written = page.locator("#written table.changes").first
    expect(written).to_contain_text(t("f_result"))
    expect(written).to_contain_text("8.5")
    assert "CET" in text or "CEST" in text  # times carry their zone
    if os.environ.get("GRADESYNC_UPDATE_SCREENSHOT") == "1":
        page.screenshot(path=str(SCREENSHOTS[locale][1]), full_page=True)

    # The other group: retried together, after the course id went onto the component.
    page.goto(f"{BASE}/attention")
    page.locator("#group-unknown_course").get_by_role("button").click()
    expect(page.get_by_role("status")).to_contain_text(f"1 {t('retried')}")
    assert clean.settle(other).state == "delivered"
    page.goto(f"{BASE}/")
    # The figure `gradesync status` gives, with the reserve (tests/conftest.py sets it to 3).
    after_left = t("budget_figure", left="·", reserve=3, limit=5000).split("·", 1)[1]
    expect(page.locator("#budget")).to_contain_text(after_left)
    plain(page)
    # `gradesync show` prints who retried it.
    shown = gradesync("show", stuck)
    assert shown.returncode == 0 and f"Retried by {CONSOLE_LOGIN[0]}." in shown.stdout
    page.context.close()


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
