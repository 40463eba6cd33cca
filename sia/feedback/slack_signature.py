"""Slack request signing: v0 HMAC-SHA256 over 'v0:{timestamp}:{body}' with the signing secret."""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The X-Slack-Signature a genuine request carries."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest()


def verify(secret: bytes, timestamp: str | None, body: bytes, signature: str | None,
           now: float, tolerance: float = 300.0) -> str | None:
    """None when genuine and fresh; otherwise why the request is refused."""
    if not timestamp or not signature:
        return "missing X-Slack-Request-Timestamp or X-Slack-Signature"
    # Slack sends whole Unix seconds: anything else ("nan", "inf", "1e9", "-5") is refused,
    # as a NaN would pass any comparison with the tolerance
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 15:
        return "malformed timestamp"
    sent = int(timestamp)
    if not abs(now - sent) <= tolerance:
        return "stale request (replay protection)"
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        return "bad signature"
    return None
