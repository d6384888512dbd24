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
# Failed logins are throttled, never locked out: per client address and user name together (so
# a stranger elsewhere cannot keep the administrator out) and per address across names (so one
# address cannot try every name). Past the free attempts each failure doubles the wait before
# the next try, up to a cap; a quarter of an hour without a failure forgets them.
LOGIN_WINDOW_S = 15 * 60
FREE_ATTEMPTS_PER_USER = 5
FREE_ATTEMPTS_PER_IP = 30
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 5 * 60
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
    """Login throttling in Redis, shared by every ingress process. An attempt is counted
    *before* its password is checked, in one script (:data:`_RESERVE`): concurrent tries cannot
    all pass the check before any of them is counted."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    @staticmethod
    def _keys(ip: str, user: str) -> list[str]:
        return [
            keys.console_login_attempts("user", f"{ip}\x1f{user}"),
            keys.console_login_attempts("ip", ip),
        ]

    def reserve(self, ip: str, user: str, now: float) -> float:
        """Take one attempt for this address and name at ``now`` (epoch seconds): 0 when it
        may go ahead (and is counted as failed until :meth:`succeeded`), else the seconds to
        wait before the next try."""
        wait_ms = self.r.eval(
            _RESERVE,
            2,
            *self._keys(ip, user),
            round(now * 1000),
            FREE_ATTEMPTS_PER_USER,
            FREE_ATTEMPTS_PER_IP,
            round(FIRST_DELAY_S * 1000),
            MAX_DELAY_S * 1000,
            LOGIN_WINDOW_S,
        )
        return int(wait_ms) / 1000

    def succeeded(self, ip: str, user: str) -> None:
        """The password was right: forget this name's failures here, and give the address its
        attempt back (people behind one address do not use each other's attempts up)."""
        self.r.eval(_SUCCEEDED, 2, *self._keys(ip, user), FREE_ATTEMPTS_PER_IP)


# KEYS: the address-and-name hash, the address hash; each {n: attempts, until: epoch ms}.
# ARGV: now ms, free per name, free per address, first delay ms, max delay ms, window s.
_RESERVE = """
local now = tonumber(ARGV[1])
local wait = 0
for i = 1, 2 do
  local untill = tonumber(redis.call('HGET', KEYS[i], 'until') or '0')
  if untill - now > wait then wait = untill - now end
end
if wait > 0 then return wait end
for i = 1, 2 do
  local n = redis.call('HINCRBY', KEYS[i], 'n', 1)
  local free = tonumber(ARGV[1 + i])
  if n >= free then
    local delay = math.min(tonumber(ARGV[4]) * 2 ^ (n - free), tonumber(ARGV[5]))
    redis.call('HSET', KEYS[i], 'until', now + delay)
  end
  redis.call('EXPIRE', KEYS[i], ARGV[6])
end
return 0
"""

_SUCCEEDED = """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  local n = redis.call('HINCRBY', KEYS[2], 'n', -1)
  if n < tonumber(ARGV[1]) then redis.call('HDEL', KEYS[2], 'until') end
end
return 0
"""


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
