"""Caller authentication for the ingress: Standard Webhooks, aNewSpring's HMAC, Moodle's token.

Standard Webhooks (standardwebhooks.com, spec/standard-webhooks.md): headers ``webhook-id``,
``webhook-timestamp`` (epoch seconds) and ``webhook-signature`` (space-separated ``v1,<base64>``
entries), each an HMAC-SHA256 of ``"{id}.{timestamp}.{body}"`` keyed by the secret's bytes
(``whsec_<base64>``); timestamps more than 5 minutes off are refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

from gradesync.webhook_secrets import signing_key

TOLERANCE_S = 5 * 60


class SignatureError(Exception):
    """The caller could not be authenticated (401)."""


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison of bytes: ``hmac.compare_digest`` refuses ``str`` with
    non-ASCII characters (a header decoded as Latin-1, a JSON token with a lone surrogate),
    and a refusal there must be a 401, not a crash."""
    return hmac.compare_digest(
        given.encode(errors="surrogatepass"), expected.encode(errors="surrogatepass")
    )


def standard_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def has_standard_headers(headers: Mapping[str, str]) -> bool:
    return "webhook-signature" in headers


def verify_standard(
    secrets: list[str], headers: Mapping[str, str], body: bytes, now: float | None = None
) -> str:
    """Check a Standard Webhooks signature made with any of ``secrets`` (the current one and,
    while rotating, the previous); return the ``webhook-id`` (the replay key)."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        raise SignatureError("webhook-id, webhook-timestamp and webhook-signature are required")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise SignatureError("webhook-timestamp must be epoch seconds")
    sent = int(timestamp)
    if abs((time.time() if now is None else now) - sent) > TOLERANCE_S:
        raise SignatureError("webhook-timestamp is outside the 5-minute tolerance")
    for secret in secrets:
        expected = standard_signature(secret, msg_id, timestamp, body)
        if any(_same(candidate, expected) for candidate in signatures.split()):
            return msg_id
    raise SignatureError("no webhook-signature matches")


def anewspring_signature(secret: str, body: bytes) -> str:
    """aNewSpring: ``X-WebHook-Signature`` = Base64(HMAC-SHA1(body, secret))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha1).digest()).decode()


def verify_anewspring(secrets: list[str], signature: str | None, body: bytes) -> None:
    if not signature:
        raise SignatureError("X-WebHook-Signature is required")
    if not any(_same(signature.strip(), anewspring_signature(s, body)) for s in secrets):
        raise SignatureError("X-WebHook-Signature does not match")


def verify_token(secrets: list[str], token: object) -> None:
    if not isinstance(token, str) or not token:
        raise SignatureError("token is required")
    if not any(_same(token, secret) for secret in secrets):
        raise SignatureError("token does not match")
