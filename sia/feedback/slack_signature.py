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
    try:
        sent = float(timestamp)
    except ValueError:
        return "malformed timestamp"
    if abs(now - sent) > tolerance:
        return "stale request (replay protection)"
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        return "bad signature"
    return None
