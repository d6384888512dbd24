"""What makes a webhook secret usable, checked once at start-up for every source.

Standard Webhooks secrets are ``whsec_`` + base64 of the key (standardwebhooks.com recommends
24–64 random bytes); Moodle's token and aNewSpring's HMAC key are used as their UTF-8 bytes.
"""

from __future__ import annotations

import base64
import binascii

MIN_KEY_BYTES = 16
PREFIX = "whsec_"
GENERATE_STANDARD = (
    f'import base64,secrets;print("{PREFIX}"+base64.b64encode(secrets.token_bytes(32)).decode())'
)


def signing_key(secret: str) -> bytes:
    """``whsec_<base64>`` decodes to the key; a plain secret (Moodle's token) is its UTF-8."""
    if secret.startswith(PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(PREFIX), validate=True)
        except binascii.Error as exc:
            raise ValueError(f"a {PREFIX} secret must be base64 after the prefix") from exc
    return secret.encode()


def check_webhook_secret(secret: str) -> None:
    """Raise ``ValueError`` saying what is wrong (never echoing the secret)."""
    if secret != secret.strip() or any(ch.isspace() or not ch.isprintable() for ch in secret):
        raise ValueError("contains whitespace or control characters (a copy-paste slip?)")
    key = signing_key(secret)
    if len(key) < MIN_KEY_BYTES:
        # Say how to make one of the same form: a whsec_ key, or a plain token (Moodle's
        # webhook token and aNewSpring's HMAC key are plain text).
        generator = (
            GENERATE_STANDARD
            if secret.startswith(PREFIX)
            else "import secrets;print(secrets.token_urlsafe(32))"
        )
        raise ValueError(
            f"is too short: at least {MIN_KEY_BYTES} bytes of key "
            f"(generate one with: python3 -c '{generator}')"
        )
