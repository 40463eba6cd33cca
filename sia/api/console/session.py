"""Console sessions: an API key, proven once at sign-in, becomes a signed cookie.

The cookie holds the key's id, an expiry and a random nonce, signed with HMAC-SHA256 under
a key derived from SIA_FEEDBACK_SECRET (which production refuses to leave at its default).
It never holds the API key. Every request re-reads the key by its id, so a revoked key's
sessions end at once. The cookie is HttpOnly, SameSite=Lax, Secure when the request came
over https, and expires after `SESSION_SECONDS`.

CSRF: every form carries a token derived from the session's nonce (before sign-in, from
a nonce in a cookie of its own); every POST is refused (403) unless it carries the right
token, and, when the browser says where it comes from (Origin), comes from this site.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

SESSION_COOKIE = "sia_console"
PRE_COOKIE = "sia_console_pre"  # the nonce the sign-in form's CSRF token comes from
SESSION_SECONDS = 8 * 3600
PRE_SECONDS = 3600
CSRF_FIELD = "csrf"


@dataclass(frozen=True)
class Session:
    """A signed-in session: whose key, until when, and its nonce."""

    key_id: str
    expires: int
    nonce: str


class Signer:
    """Signs and checks session cookies and CSRF tokens under one secret."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"sia-console-session-v1", hashlib.sha256).digest()

    def _mac(self, purpose: str, data: str) -> str:
        mac = hmac.new(self._key, f"{purpose}\n{data}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def session_cookie(self, key_id: str, *, now: float | None = None) -> tuple[str, Session]:
        """A new session for a key: the cookie's value and what it stands for."""
        session = Session(key_id, int(now if now is not None else time.time())
                          + SESSION_SECONDS, secrets.token_urlsafe(16))
        payload = base64.urlsafe_b64encode(json.dumps(
            [session.key_id, session.expires, session.nonce]).encode()).decode().rstrip("=")
        return f"{payload}.{self._mac('session', payload)}", session

    def read_session(self, cookie: str | None, *, now: float | None = None) -> Session | None:
        """The session a cookie stands for; None when forged, malformed or expired."""
        if not cookie or len(cookie) > 1000:
            return None
        payload, _, mac = cookie.partition(".")
        if not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        try:
            key_id, expires, nonce = json.loads(
                base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (ValueError, TypeError):
            return None
        if not (isinstance(key_id, str) and isinstance(expires, int)
                and isinstance(nonce, str)):
            return None
        if expires <= (now if now is not None else time.time()):
            return None
        return Session(key_id, expires, nonce)

    def csrf_token(self, nonce: str) -> str:
        """The token every form of a session (or of a sign-in page) carries."""
        return self._mac("csrf", nonce)

    def csrf_ok(self, nonce: str | None, token: str | None) -> bool:
        """Whether a form's token belongs to this session's (or sign-in page's) nonce."""
        if not nonce or not token:
            return False
        return hmac.compare_digest(token, self.csrf_token(nonce))


def new_nonce() -> str:
    """A random nonce for a sign-in page's CSRF token."""
    return secrets.token_urlsafe(16)


class SignedOut:
    """Sessions signed out before they expire (this process's memory: a cookie copied
    before sign-out stops working here at once; every session ends at its expiry)."""

    def __init__(self) -> None:
        self._until: dict[str, int] = {}

    def add(self, session: Session, *, now: float | None = None) -> None:
        """Refuse this session from now on."""
        at = now if now is not None else time.time()
        self._until = {n: e for n, e in self._until.items() if e > at}
        self._until[session.nonce] = session.expires

    def __contains__(self, session: object) -> bool:
        return isinstance(session, Session) and session.nonce in self._until


class ConsoleState:
    """What the console keeps per app: its signer and the sessions signed out."""

    def __init__(self, secret: bytes) -> None:
        self.signer = Signer(secret)
        self.signed_out = SignedOut()
