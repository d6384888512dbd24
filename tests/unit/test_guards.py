"""Every authentication branch at unit level: each raise is reached, named, lets nothing through.

The ingress tests show the HTTP answers; here each guard of ``producers/signatures.py`` and
``gradesync/webhook_secrets.py`` is pinned on its own, so removing one fails a fast test
(README "Mutation testing").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gradesync.webhook_secrets import MIN_KEY_BYTES, check_webhook_secret, signing_key
from producers.signatures import (
    TOLERANCE_S,
    SignatureError,
    anewspring_signature,
    has_standard_headers,
    standard_signature,
    verify_anewspring,
    verify_standard,
    verify_token,
)
from tests.unit.test_ingress import App

WHSEC = "whsec_" + base64.b64encode(b"unit-secret-of-24-bytes!").decode()
BODY = b'{"event": 1}'
NOW = 1_795_179_780
REQUIRED = "webhook-id, webhook-timestamp and webhook-signature are required"
NOT_EPOCH = "webhook-timestamp must be epoch seconds"
STALE = "webhook-timestamp is outside the 5-minute tolerance"
NO_MATCH = "no webhook-signature matches"


def signed(stamp: int | str = NOW, msg_id: str = "msg_1", secret: str = WHSEC) -> dict[str, str]:
    stamp = str(stamp)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": standard_signature(secret, msg_id, stamp, BODY),
    }


def refused(message: str, *args: Any, **kwargs: Any) -> None:
    """The guard named by ``message`` refuses; nothing else does (exact text, not a prefix)."""
    verify = kwargs.pop("verify", verify_standard)
    secret, *rest = args
    with pytest.raises(SignatureError) as info:
        verify([secret], *rest, **kwargs)
    assert str(info.value) == message


# -- Standard Webhooks -------------------------------------------------------------------------


def test_the_signature_is_the_spec_hmac_of_id_timestamp_and_body() -> None:
    key = b"unit-secret-of-24-bytes!"
    digest = hmac.new(key, b"msg_1." + str(NOW).encode() + b"." + BODY, hashlib.sha256).digest()
    assert standard_signature(WHSEC, "msg_1", str(NOW), BODY) == (
        "v1," + base64.b64encode(digest).decode()
    )


def test_a_good_signature_returns_the_message_id() -> None:
    assert verify_standard([WHSEC], signed(), BODY, now=NOW) == "msg_1"


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
@pytest.mark.parametrize("value", [None, ""])
def test_each_standard_header_is_required(header: str, value: str | None) -> None:
    headers = signed()
    if value is None:
        del headers[header]
    else:
        headers[header] = value
    refused(REQUIRED, WHSEC, headers, BODY, now=NOW)


@pytest.mark.parametrize(
    "stamp",
    [
        f"{NOW}.0",
        f"+{NOW}",
        f"-{NOW}",
        f" {NOW}",
        "1795179780ms",
        "１７９５１７９７８０",  # full-width digits: str.isdigit() says yes, int() reads them
        "0" + str(NOW) + "00",  # 13 characters
    ],
)
def test_the_timestamp_must_be_ascii_epoch_seconds(stamp: str) -> None:
    refused(NOT_EPOCH, WHSEC, signed(stamp), BODY, now=NOW)


def test_timestamps_are_at_most_twelve_digits() -> None:
    twelve = "0" + str(NOW) + "0"
    assert verify_standard([WHSEC], signed(twelve), BODY, now=int(twelve)) == "msg_1"
    refused(NOT_EPOCH, WHSEC, signed("0" + twelve), BODY, now=int(twelve))


def test_the_tolerance_is_five_minutes_each_way_inclusive() -> None:
    assert TOLERANCE_S == 300
    for now in (NOW - 300, NOW + 300):
        assert verify_standard([WHSEC], signed(), BODY, now=now) == "msg_1"
    for late in (NOW - 301, NOW + 301, NOW + 300.001):
        refused(STALE, WHSEC, signed(), BODY, now=late)


def test_without_now_the_clock_is_read() -> None:
    assert verify_standard([WHSEC], signed(int(time.time())), BODY) == "msg_1"
    refused(STALE, WHSEC, signed(int(time.time()) - 3600), BODY)


def test_a_signature_over_other_bytes_is_refused() -> None:
    headers = signed()
    refused(NO_MATCH, WHSEC, headers, BODY + b" ", now=NOW)
    refused(NO_MATCH, WHSEC, {**headers, "webhook-id": "msg_2"}, BODY, now=NOW)
    other_key = "whsec_" + base64.b64encode(b"another-secret-of-24-byte").decode()
    refused(NO_MATCH, other_key, headers, BODY, now=NOW)


def test_any_listed_signature_may_match() -> None:
    good = signed()["webhook-signature"]
    rotated = {**signed(), "webhook-signature": f"v1,AAAA  v1,{'B' * 44}\t{good}"}
    assert verify_standard([WHSEC], rotated, BODY, now=NOW) == "msg_1"
    refused(NO_MATCH, WHSEC, {**signed(), "webhook-signature": good[3:]}, BODY, now=NOW)


def test_only_the_signature_header_selects_standard_webhooks() -> None:
    assert has_standard_headers({"webhook-signature": "v1,x"})
    assert not has_standard_headers({"webhook-id": "m", "webhook-timestamp": str(NOW)})


def test_a_moodle_token_signs_the_standard_webhooks_way_as_its_utf8_bytes() -> None:
    token = "dev-moodle-token"
    digest = hmac.new(token.encode(), f"m1.{NOW}.".encode() + BODY, hashlib.sha256).digest()
    headers = signed(secret=token, msg_id="m1")
    assert headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()
    assert verify_standard([token], headers, BODY, now=NOW) == "m1"
    refused(NO_MATCH, "another-moodle-token", headers, BODY, now=NOW)


def test_the_moodle_route_accepts_a_standard_webhooks_signature_instead_of_the_token() -> None:
    app = App()
    body = json.loads(
        (
            Path(__file__).parent.parent
            / "fixtures"
            / "moodle-local_webhooks-course_completed.json"
        ).read_text()
    )
    del body["token"]
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()))
    headers = {
        "content-type": "application/json",
        "webhook-id": "moodle-1",
        "webhook-timestamp": stamp,
        "webhook-signature": standard_signature("dev-moodle-token", "moodle-1", stamp, raw),
    }
    assert app.client.post("/events/moodle", content=raw, headers=headers).status_code == 202
    forged = {**headers, "webhook-signature": standard_signature(WHSEC, "moodle-1", stamp, raw)}
    assert app.client.post("/events/moodle", content=raw, headers=forged).status_code == 401


# -- aNewSpring ---------------------------------------------------------------------------------


def test_the_anewspring_signature_is_base64_hmac_sha1_of_the_body() -> None:
    digest = hmac.new(b"anewspring-unit-secret", BODY, hashlib.sha1).digest()
    assert anewspring_signature("anewspring-unit-secret", BODY) == base64.b64encode(digest).decode()


def test_the_anewspring_signature_is_stripped_then_compared() -> None:
    sig = anewspring_signature("anewspring-unit-secret", BODY)
    verify_anewspring(["anewspring-unit-secret"], sig, BODY)
    verify_anewspring(["anewspring-unit-secret"], f" {sig}\r\n", BODY)
    refused(
        "X-WebHook-Signature does not match",
        "anewspring-unit-secret",
        sig,
        BODY + b" ",
        verify=verify_anewspring,
    )
    refused(
        "X-WebHook-Signature does not match",
        "anewspring-unit-secret",
        "é" + sig,
        BODY,
        verify=verify_anewspring,
    )


@pytest.mark.parametrize("signature", [None, ""])
def test_the_anewspring_signature_is_required(signature: str | None) -> None:
    refused(
        "X-WebHook-Signature is required",
        "anewspring-unit-secret",
        signature,
        BODY,
        verify=verify_anewspring,
    )


# -- Moodle's token -----------------------------------------------------------------------------


def test_the_right_token_passes() -> None:
    verify_token(["dev-moodle-token"], "dev-moodle-token")


@pytest.mark.parametrize("token", [None, "", 123, ["dev-moodle-token"], b"dev-moodle-token"])
def test_a_token_is_a_non_empty_string(token: object) -> None:
    refused("token is required", "dev-moodle-token", token, verify=verify_token)


@pytest.mark.parametrize(
    "token", ["dev-moodle-toke", "dev-moodle-token ", "DEV-MOODLE-TOKEN", "dév", "\udc80"]
)
def test_a_token_that_differs_does_not_match(token: str) -> None:
    refused("token does not match", "dev-moodle-token", token, verify=verify_token)


def test_secrets_with_lone_surrogates_compare_without_crashing() -> None:
    # A secret read from a byte-garbled environment variable holds lone surrogates; settings
    # refuse it (see below), and the comparison itself must not crash on one either.
    verify_token(["tok\udc80en"], "tok\udc80en")
    refused("token does not match", "tok\udc80en", "tok\udc81en", verify=verify_token)


# -- webhook secrets ----------------------------------------------------------------------------


def test_a_whsec_secret_is_its_base64_key_and_a_plain_one_its_utf8() -> None:
    assert signing_key(WHSEC) == b"unit-secret-of-24-bytes!"
    assert signing_key("dev-moodle-token") == b"dev-moodle-token"
    assert signing_key("sëcret-whsec_") == "sëcret-whsec_".encode()


@pytest.mark.parametrize("tail", ["!!!!", "YWJj*ZGVm", "YWJj ZGVm", "YWJjZA"])
def test_a_whsec_secret_must_be_strict_base64(tail: str) -> None:
    with pytest.raises(ValueError) as info:
        signing_key("whsec_" + tail)
    assert str(info.value) == "a whsec_ secret must be base64 after the prefix"


def test_the_minimum_key_is_sixteen_bytes_exactly() -> None:
    assert MIN_KEY_BYTES == 16
    check_webhook_secret("x" * 16)
    check_webhook_secret("whsec_" + base64.b64encode(b"k" * 16).decode())
    for short in ("x" * 15, "whsec_" + base64.b64encode(b"k" * 15).decode(), "é" * 7 + "x"):
        with pytest.raises(ValueError) as info:
            check_webhook_secret(short)
        assert str(info.value).startswith("is too short: at least 16 bytes of key (generate")
        assert short not in str(info.value)
    check_webhook_secret("é" * 8)  # 16 bytes of UTF-8


@pytest.mark.parametrize(
    ("short", "generator"),
    [
        (
            "whsec_c2hvcnQ=",
            "import base64,secrets;"
            'print("whsec_"+base64.b64encode(secrets.token_bytes(32)).decode())',
        ),
        ("short", "import secrets;print(secrets.token_urlsafe(32))"),  # Moodle / aNewSpring form
    ],
)
def test_the_short_secret_message_carries_a_working_generator_of_its_form(
    short: str, generator: str
) -> None:
    with pytest.raises(ValueError) as info:
        check_webhook_secret(short)
    command = str(info.value).split("python3 -c '", 1)[1].rsplit("'", 1)[0]
    assert command == generator
    made = subprocess.run([sys.executable, "-c", command], capture_output=True, text=True)
    check_webhook_secret(made.stdout.strip())


@pytest.mark.parametrize(
    "secret",
    [
        " " + "x" * 20,
        "x" * 20 + "\n",
        "x" * 10 + " " + "x" * 10,
        "x" * 10 + "\t" + "x" * 10,
        "x" * 10 + "\u00a0" + "x" * 10,
        "x" * 10 + "\x00" + "x" * 10,
        "x" * 10 + "\u200b" + "x" * 10,
        "x" * 10 + "\udc80" + "x" * 10,
    ],
)
def test_whitespace_and_control_characters_are_refused(secret: str) -> None:
    with pytest.raises(ValueError) as info:
        check_webhook_secret(secret)
    assert str(info.value) == "contains whitespace or control characters (a copy-paste slip?)"
