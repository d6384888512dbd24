"""Login throttling counted atomically in the real ingress (issue 25 item 7): 200 concurrent
wrong passwords from one address get at most the free attempts' password checks."""

from __future__ import annotations

import math
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from console.auth import FIRST_DELAY_S, FREE_ATTEMPTS_PER_USER
from tests.conftest import API_PORT, CONSOLE_LOGIN
from tests.integration.conftest import Stack

TRIES = 200


def test_concurrent_wrong_passwords_get_no_more_checks_than_the_free_attempts(
    clean: Stack,
) -> None:
    base = f"http://127.0.0.1:{API_PORT}"
    with httpx.Client(base_url=base, timeout=30) as browser:
        page = browser.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        cookies = dict(browser.cookies)
    form = {"user": CONSOLE_LOGIN[0], "password": "wrong", "csrf": token.group(1)}

    def attempt(_: int) -> int:
        with httpx.Client(base_url=base, timeout=60, cookies=cookies) as client:
            return client.post("/console/login", data=form).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(attempt, range(TRIES)))
    elapsed = time.monotonic() - started
    # The free attempts, then one more each time a doubling wait (1 s, 2 s, 4 s, …) is over.
    bound = FREE_ATTEMPTS_PER_USER + math.floor(math.log2(elapsed / FIRST_DELAY_S + 1))
    assert answers.count(401) <= bound, (answers.count(401), elapsed)
    assert answers.count(401) + answers.count(429) == TRIES
