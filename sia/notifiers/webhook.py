"""Webhook notifier: POST the message as signed JSON to the recipient's URL.

Body (UTF-8 JSON, compact)::

    {"message_id": "...", "kind": "alert|group|digest|notice", "subject": "...",
     "recipient": {"name": "...", "rep_id": "..." | null},
     "alerts": [{"alert_id", "detector", "kind", "severity", "title", "explanation",
                 "action", "subject_kind", "subject_id", "occurred_at" (ISO 8601),
                 "value", "evidence" [event ids], "facts" {...}}],
     "text": "..."}

Headers: ``X-SIA-Timestamp: <unix seconds>``, ``X-SIA-Signature: v1=<hex HMAC-SHA256 of
"{timestamp}.{body}">``, ``Idempotency-Key: <message_id>``, ``Content-Type:
application/json``. Receivers check the signature with `verify_signature` (or its three
lines in their own language) and deduplicate on the Idempotency-Key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import httpx

from sia.notifiers.base import (
    Channel,
    DeliveryError,
    Message,
    Notifier,
    error_for_status,
    parse_retry_after,
)
from sia.notifiers.console import one_line, truncate

SIGNATURE_VERSION = "v1"
RESERVED_HEADERS = frozenset({"x-sia-timestamp", "x-sia-signature", "idempotency-key",
                              "content-type", "content-length", "host"})


@dataclass(frozen=True)
class WebhookSettings:
    """Signing secret, timeout and extra headers (e.g. an API key) for the webhook notifier."""

    secret: bytes = field(repr=False)
    timeout: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or not self.secret:
            raise ValueError("secret must be non-empty bytes")
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float) \
                or self.timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        for name, value in self.headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise ValueError("headers must map names to string values")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by SIA and cannot be overridden")
            if any(c in name + value for c in "\r\n"):
                raise ValueError(f"header {name!r} contains a line break")


class WebhookNotifier(Notifier):
    """POST each message as signed JSON to the recipient's http(s) URL."""

    channel: ClassVar[Channel] = "webhook"
    settings_type: ClassVar[type[WebhookSettings]] = WebhookSettings
    max_subject: ClassVar[int] = 500
    max_body: ClassVar[int] = 100_000  # per text field (notice text, each explanation)

    def __init__(self, secret: bytes | str, timeout: float = 10,
                 headers: Mapping[str, str] | None = None) -> None:
        raw = secret.encode("utf-8") if isinstance(secret, str) else secret
        self.settings = WebhookSettings(secret=raw, timeout=timeout, headers=dict(headers or {}))
        self._client: httpx.Client | None = None  # made on first send (TLS setup is slow)

    def send(self, message: Message) -> str:
        """POST once; return the receiver's X-Request-Id (or "")."""
        address = message.recipient.address
        try:
            url = httpx.URL(address)
        except httpx.InvalidURL as exc:
            raise DeliveryError(f"webhook address is not a URL: {exc}", retryable=False) from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise DeliveryError(f"webhook address must be an http(s) URL, got {address[:100]!r}",
                                retryable=False)
        if not message.message_id.isascii() or not message.message_id.isprintable():
            raise DeliveryError(f"message id {message.message_id!r} cannot be an HTTP header",
                                retryable=False)
        body = self.body(message)
        timestamp = str(int(time.time()))
        headers = {
            **self.settings.headers,
            "Content-Type": "application/json",
            "X-SIA-Timestamp": timestamp,
            "X-SIA-Signature": sign(self.settings.secret, timestamp, body),
            "Idempotency-Key": message.message_id,
        }
        where = f"webhook {url.host}"
        try:
            response = self._http().post(url, content=body, headers=headers)
        except httpx.TransportError as exc:  # connect, read, write, timeouts, protocol
            raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}",
                                retryable=True) from exc
        error = error_for_status(response.status_code, response.text,
                                 retry_after_seconds(response.headers.get("Retry-After"),
                                                     now=time.time()),
                                 where=where)
        if error is not None:
            raise error
        return str(response.headers.get("X-Request-Id", ""))

    def body(self, message: Message) -> bytes:
        """The exact JSON bytes that are signed and sent."""
        return json.dumps(self.payload(message), separators=(",", ":"), ensure_ascii=False,
                          default=_jsonable).encode("utf-8")

    def payload(self, message: Message) -> dict[str, Any]:
        """The documented JSON body as a dictionary."""
        return {
            "message_id": message.message_id,
            "kind": message.kind,
            "subject": one_line(message.subject, self.max_subject),
            "recipient": {"name": message.recipient.name, "rep_id": message.recipient.rep_id},
            "alerts": [{
                "alert_id": a.alert_id,
                "detector": a.detector,
                "kind": a.kind,
                "severity": a.severity,
                "title": a.title,
                "explanation": truncate(a.explanation, self.max_body),
                "action": a.action,
                "subject_kind": a.subject_kind,
                "subject_id": a.subject_id,
                "occurred_at": a.occurred_at.isoformat(),
                "value": a.value,
                "evidence": list(a.evidence),
                "facts": a.facts,
            } for a in message.alerts],
            "text": truncate(message.text, self.max_body),
        }

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            # redirects are not followed: a moved endpoint is a configuration to fix
            self._client = httpx.Client(timeout=self.settings.timeout, follow_redirects=False,
                                        headers={"User-Agent": "sia-webhook/1"})
        return self._client

    def __repr__(self) -> str:
        return f"WebhookNotifier({self.settings!r})"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The X-SIA-Signature value: 'v1=' + hex HMAC-SHA256 of b'{timestamp}.' + body."""
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def verify_signature(secret: bytes, timestamp: str | int, body: bytes | str, header: str,
                     now: float, tolerance_s: float = 300) -> bool:
    """True when `header` signs `body` at `timestamp` with `secret` and the timestamp is
    within `tolerance_s` of `now`. Several comma-separated signatures are accepted (secret
    rotation); comparison is constant time."""
    text = str(timestamp).strip()
    if not (text.isascii() and text.isdigit()) or abs(now - int(text)) > tolerance_s:
        return False
    raw = body.encode("utf-8") if isinstance(body, str) else body
    expected = sign(secret, text, raw).encode("ascii")
    matched = False
    for candidate in header.split(","):
        # no early exit: every candidate is compared
        matched |= hmac.compare_digest(candidate.strip().encode("utf-8"), expected)
    return matched


def retry_after_seconds(value: str | None, now: float) -> str | None:
    """Retry-After as seconds (for error_for_status), whether sent as seconds or an HTTP date;
    error_for_status caps it (sia.notifiers.base.parse_retry_after)."""
    if value is None:
        return None
    try:
        float(value)
        return value
    except ValueError:
        pass
    seconds = parse_retry_after(value, now)
    return None if seconds is None else str(seconds)


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)
