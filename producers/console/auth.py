"""Who is at the console: credentials, the signed session cookie, its CSRF token, and the
login rate limit.

The session lives in the cookie (signed with GRADESYNC_CONSOLE_SECRET, so nothing can forge
a user name into it) and holds the user name and a random CSRF token; every POST must carry
that token in a hidden field. A visitor who has not logged in gets a session too (no user,
a token), so the login form itself is protected; logging in issues a fresh one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import redis
from itsdangerous import BadSignature, URLSafeTimedSerializer

from gradesync import keys
from gradesync.settings import ConfigurationError, Settings

COOKIE = "gs_console"
SESSION_MAX_AGE_S = 8 * 3600
# Failed login attempts in a window; beyond these, logins are refused until it ends (a
# successful login does not count, so people behind one address do not lock each other out).
LOGIN_WINDOW_S = 15 * 60
MAX_ATTEMPTS_PER_USER = 10
MAX_ATTEMPTS_PER_IP = 30
# Compared against when the name is unknown, so a wrong name costs what a wrong password does.
_NOBODY = hashlib.sha256(b"no such console user").digest()


@dataclass(frozen=True)
class Session:
    user: str  # "" before login
    csrf: str


class Access:
    """The console's credentials and session signing, from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.logins = {
            name: hashlib.sha256(password.encode()).digest()
            for name, password in settings.console_logins.items()
        }
        # Development without users: open, as Flower is under GRADESYNC_INSECURE_DEV=1.
        self.open = not self.logins and settings.insecure_dev
        self.configured = bool(self.logins) or self.open
        secret = settings.console_secret
        if secret is None and self.logins and not settings.insecure_dev:
            raise ConfigurationError(
                "GRADESYNC_CONSOLE_USERS is set but GRADESYNC_CONSOLE_SECRET is not: set a "
                "random secret of 32 characters or more (it signs the console's session cookie)"
            )
        key = secret.get_secret_value() if secret is not None else secrets.token_urlsafe(32)
        self._signer = URLSafeTimedSerializer(key, salt="gradesync-console-session")
        # Behind TLS in production; a development machine serves plain http on localhost.
        self.secure_cookie = not settings.insecure_dev

    def check(self, name: str, password: str) -> bool:
        """Constant-time in the password, and the same work for an unknown name."""
        given = hashlib.sha256(password.encode()).digest()
        expected = self.logins.get(name, _NOBODY)
        return hmac.compare_digest(given, expected) and name in self.logins

    def new_session(self, user: str = "") -> Session:
        return Session(user=user, csrf=secrets.token_urlsafe(32))

    def dump(self, session: Session) -> str:
        return self._signer.dumps({"u": session.user, "t": session.csrf})

    def load(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._signer.loads(cookie, max_age=SESSION_MAX_AGE_S)
        except BadSignature:  # also expired: SignatureExpired is a BadSignature
            return None
        if not isinstance(data, dict):
            return None
        user, csrf = data.get("u"), data.get("t")
        if not isinstance(user, str) or not isinstance(csrf, str) or not csrf:
            return None
        if user and user not in self.logins:
            return None  # removed from GRADESYNC_CONSOLE_USERS since
        return Session(user=user, csrf=csrf)

    def user(self, session: Session | None) -> str | None:
        """Who is logged in; in open development, everyone is ``dev``."""
        if self.open:
            return "dev"
        return session.user if session is not None and session.user else None


def csrf_ok(session: Session | None, token: object) -> bool:
    if session is None or not isinstance(token, str) or not token:
        return False
    return hmac.compare_digest(session.csrf.encode(), token.encode())


class LoginLimit:
    """Attempts per client address and per user name in a fixed window, in Redis (shared by
    every ingress process)."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def allow(self, ip: str, user: str) -> bool:
        by_ip, by_user = self.r.mget(
            [keys.console_login_attempts("ip", ip), keys.console_login_attempts("user", user)]
        )
        return int(by_ip or 0) < MAX_ATTEMPTS_PER_IP and int(by_user or 0) < MAX_ATTEMPTS_PER_USER

    def failed(self, ip: str, user: str) -> None:
        with self.r.pipeline(transaction=True) as pipe:
            for kind, who in (("ip", ip), ("user", user)):
                key = keys.console_login_attempts(kind, who)
                # The window starts at the first failure (SET NX EX: any Redis version).
                pipe.set(key, 0, ex=LOGIN_WINDOW_S, nx=True)
                pipe.incr(key)
            pipe.execute()

    def succeeded(self, user: str) -> None:
        self.r.delete(keys.console_login_attempts("user", user))


class Revocations:
    """Sessions ended by logging out, until their cookie would have expired anyway."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def revoke(self, session: Session) -> None:
        self.r.set(keys.console_revoked(session.csrf), 1, ex=SESSION_MAX_AGE_S)

    def revoked(self, session: Session) -> bool:
        try:
            return bool(self.r.exists(keys.console_revoked(session.csrf)))
        except redis.RedisError:
            return True  # cannot tell: treat the session as ended (log in again)
