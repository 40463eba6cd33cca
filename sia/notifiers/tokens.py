"""Signed, expiring feedback tokens for the links in emails ("Useful", "Not useful", "Snooze").

Format: ``v1.<payload>.<tag>``, where ``payload`` is the unpadded base64url of compact JSON
``{"a": alert_id, "v": verdict, "r": rep_id or null, "e": expires_at}`` and ``tag`` is the
unpadded base64url of the first 16 bytes (128 bits) of HMAC-SHA256(secret,
``"sia-feedback." + "v1." + payload``). Only characters ``A-Z a-z 0-9 - _ .`` appear, so a
token goes into a URL unquoted. No pickle: reading a token never runs code, and the
signature is checked (in constant time) before the payload is parsed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from sia.notifiers.base import FeedbackLinks

VERSION: Final = "v1"
VERDICTS: Final = ("useful", "not_useful", "snooze_7d")
MIN_SECRET_BYTES: Final = 16
MAX_TOKEN_CHARS: Final = 2048  # refuse anything larger before doing any work
_TAG_BYTES: Final = 16
_CONTEXT: Final = b"sia-feedback."  # keeps these tags apart from other uses of a secret


class InvalidToken(Exception):
    """A feedback token that must not be honoured; `reason` is malformed, bad_signature or
    expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FeedbackClaim:
    """What a valid token says: who judged which alert, how, and until when it holds."""

    alert_id: str
    verdict: str
    rep_id: str | None
    expires_at: int


def make_token(secret: bytes, alert_id: str, verdict: str, rep_id: str | None,
               expires_at: int) -> str:
    """A URL-safe token binding an alert, a verdict and a rep until `expires_at` (unix s)."""
    _check_secret(secret)
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    if not alert_id:
        raise ValueError("alert_id is empty")
    claims = {"a": alert_id, "v": verdict, "r": rep_id, "e": int(expires_at)}
    payload = _b64(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{VERSION}.{payload}.{_b64(_tag(secret, payload))}"


def read_token(secret: bytes, token: str, now: int) -> FeedbackClaim:
    """The claim in `token`; InvalidToken when it is malformed, forged or expired."""
    _check_secret(secret)
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken("malformed")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise InvalidToken("malformed")
    _, payload, tag_text = parts
    try:
        tag = _unb64(tag_text)
        _unb64(payload)
    except ValueError:
        raise InvalidToken("malformed") from None
    if len(tag) != _TAG_BYTES:
        raise InvalidToken("malformed")
    if not hmac.compare_digest(tag, _tag(secret, payload)):
        raise InvalidToken("bad_signature")
    try:
        claims = json.loads(_unb64(payload))
        claim = FeedbackClaim(alert_id=claims["a"], verdict=claims["v"], rep_id=claims["r"],
                              expires_at=claims["e"])
    except (ValueError, KeyError, TypeError):
        raise InvalidToken("malformed") from None
    if (not isinstance(claim.alert_id, str) or claim.verdict not in VERDICTS
            or not isinstance(claim.expires_at, int)
            or not (claim.rep_id is None or isinstance(claim.rep_id, str))):
        raise InvalidToken("malformed")
    if now >= claim.expires_at:
        raise InvalidToken("expired")
    return claim


def feedback_links(base_url: str, secret: bytes, alert_id: str, rep_id: str | None, now: int,
                   ttl_days: int = 14) -> FeedbackLinks:
    """Signed `{base_url}/feedback/email?token=...` URLs for useful, not useful, snooze 7 days."""
    if ttl_days <= 0:
        raise ValueError(f"ttl_days must be positive, got {ttl_days}")
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
    expires_at = int(now) + ttl_days * 86_400
    root = base_url.rstrip("/")

    def url(verdict: str) -> str:
        token = make_token(secret, alert_id, verdict, rep_id, expires_at)
        return f"{root}/feedback/email?token={quote(token, safe='')}"

    return FeedbackLinks(useful=url("useful"), not_useful=url("not_useful"),
                         snooze=url("snooze_7d"))


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the feedback secret must be at least {MIN_SECRET_BYTES} bytes")


def _tag(secret: bytes, payload: str) -> bytes:
    mac = hmac.new(secret, _CONTEXT + VERSION.encode() + b"." + payload.encode(), hashlib.sha256)
    return mac.digest()[:_TAG_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not all(c.isalnum() or c in "-_" for c in text) or not text.isascii():
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
