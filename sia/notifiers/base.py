"""The notifier contract: send one message, or raise a typed error that says whether a
retry can help (after Alertmanager's notifiers and apprise's declared limits).

Retry, backoff, dedup, routing and muting are stages around every notifier, never code
inside one: a notifier only turns a `Message` into one delivery on its channel.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Literal

Channel = Literal["slack", "email", "webhook", "console"]
# the longest wait a receiver's Retry-After can impose; more, and absurd values (inf, nan,
# 3e11, a date in the year 9999), count as this: a day, then the worker tries again
MAX_RETRY_AFTER_S = 86_400.0
MessageKind = Literal["alert", "group", "digest", "notice"]


@dataclass(frozen=True)
class Recipient:
    """Who gets a message, and where."""

    channel: Channel
    address: str  # Slack user or channel id, email address, webhook URL, "-" for console
    name: str = ""
    rep_id: str | None = None
    timezone: str = "UTC"


@dataclass(frozen=True)
class AlertView:
    """What a message shows of one alert."""

    alert_id: str
    detector: str
    kind: str
    severity: str  # low | medium | high
    title: str
    explanation: str
    action: str
    subject_kind: str
    subject_id: str
    occurred_at: datetime
    value: float = 0.0
    evidence: tuple[str, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FeedbackLinks:
    """Where a person says what an alert was worth (signed, expiring URLs for email)."""

    useful: str
    not_useful: str
    snooze: str


@dataclass(frozen=True)
class Message:
    """One delivery: one or more alerts (a group or a digest), or a notice, to one recipient."""

    message_id: str  # deterministic: the idempotency key receivers deduplicate on
    recipient: Recipient
    kind: MessageKind
    subject: str  # one-line headline
    alerts: tuple[AlertView, ...] = ()
    text: str = ""  # for notices (e.g. "your snooze of customer X ended")
    feedback: dict[str, FeedbackLinks] = field(default_factory=dict)  # by alert_id
    # an earlier attempt may have reached the receiver (it timed out, the connection was
    # lost, a 5xx): a notifier that can look (Slack) checks before sending again
    maybe_delivered: bool = False


class DeliveryError(Exception):
    """A send failed; `retryable` says whether trying again can help."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None,
                 status: int | None = None, maybe_delivered: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the receiver asked us to wait (429)
        self.status = status
        # the request may have been carried out although it failed (timeout after sending,
        # connection reset, 5xx): a retry must not blindly send again
        self.maybe_delivered = maybe_delivered


def error_for_status(status: int, body: str = "", retry_after: str | None = None,
                     where: str = "") -> DeliveryError | None:
    """The one rule for HTTP answers: 2xx ok, 429 and 5xx retryable, other 4xx permanent."""
    if 200 <= status < 300:
        return None
    wait = parse_retry_after(retry_after)
    reason = f"{where} answered HTTP {status}" + (f": {body[:200]}" if body else "")
    return DeliveryError(reason, retryable=status == 429 or status >= 500 or status == 408,
                         retry_after=wait, status=status)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds in [0, MAX_RETRY_AFTER_S].

    None when absent or unreadable (the worker's own backoff applies); infinities, NaN and
    waits beyond the cap count as the cap, so no receiver can park a message for centuries
    or crash the worker with a number `timedelta` cannot hold.
    """
    if value is None:
        return None
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        from_date = _http_date_seconds(text, time.time() if now is None else now)
        if from_date is None:
            return None
        seconds = from_date
    if math.isnan(seconds) or seconds > MAX_RETRY_AFTER_S:
        return MAX_RETRY_AFTER_S
    return max(seconds, 0.0)


def _http_date_seconds(text: str, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return when.timestamp() - now
    except (OverflowError, ValueError, OSError):
        return MAX_RETRY_AFTER_S


class Notifier(ABC):
    """Send one message on one channel."""

    channel: ClassVar[Channel]
    max_subject: ClassVar[int] = 150
    max_body: ClassVar[int] = 40_000

    @abstractmethod
    def send(self, message: Message) -> str:
        """Deliver; return the receiver's id for it (or ""); raise DeliveryError on failure."""

    def close(self) -> None:  # noqa: B027 - an optional hook, not every notifier holds one
        """Release connections."""
