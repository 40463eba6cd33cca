"""The delivery worker: sends due outbox messages through their notifiers.

Retries with exponential backoff and full jitter, honours a receiver's Retry-After
(Slack's 429) up to `max_retry_after` (a day: a longer or infinite wait counts as that, so
no receiver parks a message for years or stops the worker), records every attempt, and
dead-letters a message after `max_attempts` or at the first permanent failure. Each
message is committed on its own right after its attempt, so a crash can at worst repeat
the one send in flight; workers sharing a PostgreSQL store claim each message with
SELECT ... FOR UPDATE SKIP LOCKED, so no two of them send the same message (on SQLite,
run one worker); every message carries its deterministic id as an idempotency key
(webhook `Idempotency-Key`, email `Message-ID`, Slack metadata) for receivers to drop
that repeat.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from sia.alerts.store import AlertRecord, AlertStore
from sia.delivery.tables import DeliveryAttempt, OutboxMessage
from sia.notifiers.base import (
    MAX_RETRY_AFTER_S,
    AlertView,
    DeliveryError,
    FeedbackLinks,
    Message,
    Notifier,
    Recipient,
)

LinkMaker = Callable[[str, str | None], FeedbackLinks]  # (alert_id, rep_id) -> links


@dataclass
class DeliveryStats:
    """What one pass of the worker did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    waiting: dict[str, int] = field(default_factory=dict)  # due, but no notifier for channel
    latencies: list[float] = field(default_factory=list)  # seconds, detection to send
    routed: int = 0  # alerts routed in this step (Delivery.step)
    history: int = 0  # alerts too old to send, kept as history in this step


class DeliveryWorker:
    """Sends what is due; every decision is stored before the next send."""

    def __init__(self, store: AlertStore, notifiers: Mapping[str, Notifier], *,
                 max_attempts: int = 8, base_delay: float = 30.0, max_delay: float = 3600.0,
                 links: LinkMaker | None = None, rng: random.Random | None = None,
                 clock: Callable[[], datetime] | None = None,
                 max_retry_after: float = MAX_RETRY_AFTER_S) -> None:
        if max_attempts < 1 or not 0 < base_delay <= max_delay <= max_retry_after \
                or not math.isfinite(max_retry_after):
            raise ValueError("need max_attempts >= 1 and "
                             "0 < base_delay <= max_delay <= max_retry_after < inf")
        self.store = store
        self.notifiers = dict(notifiers)
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_retry_after = max_retry_after
        self.links = links
        self.rng = rng or random.Random()
        self.clock = clock

    def backoff(self, attempts: int, retry_after: float | None) -> float:
        """Seconds before the next try: full jitter, at least what the receiver asked, at
        most `max_retry_after` (an infinite or NaN request counts as that)."""
        exponent = min(max(attempts - 1, 0), 60)  # 2**60 * base_delay is past any max_delay
        ceiling = min(self.max_delay, self.base_delay * 2 ** exponent)
        delay = self.rng.uniform(self.base_delay / 2, ceiling)
        asked = 0.0 if retry_after is None else float(retry_after)
        if not math.isfinite(asked):
            asked = self.max_retry_after
        return min(max(delay, asked), self.max_retry_after)

    def run_once(self, now: datetime, limit: int = 500) -> DeliveryStats:
        """Try every message due by `now` once."""
        stats = DeliveryStats()
        with Session(self.store.engine) as session:
            due_now = (OutboxMessage.status == "queued") & (OutboxMessage.next_attempt_at <= now)
            due = list(session.scalars(select(OutboxMessage.message_id).where(
                due_now, OutboxMessage.channel.in_(list(self.notifiers)))
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.message_id)
                .limit(limit)))
            # a channel without a notifier is a configuration gap: wait, and say so
            for channel in session.scalars(select(OutboxMessage.channel).where(
                    due_now, OutboxMessage.channel.not_in(list(self.notifiers)))):
                stats.waiting[channel] = stats.waiting.get(channel, 0) + 1
        for mid in due:
            self._deliver(mid, now, stats)
        return stats

    def _deliver(self, mid: str, now: datetime, stats: DeliveryStats) -> None:
        with Session(self.store.engine) as session, session.begin():
            # claim the message: on PostgreSQL the row stays locked until this commit and
            # a worker that finds it locked skips it (SQLite has no row locks: one worker)
            row = session.scalars(select(OutboxMessage).where(
                OutboxMessage.message_id == mid, OutboxMessage.status == "queued",
                OutboxMessage.next_attempt_at <= now)
                .with_for_update(skip_locked=True)).first()
            if row is None:
                return  # another worker has it, sent it, or put it off
            notifier = self.notifiers[row.channel]
            started = time.perf_counter()
            error: DeliveryError | None = None
            receipt = ""
            try:
                receipt = notifier.send(self._message(session, row))
            except DeliveryError as exc:
                error = exc
            except Exception as exc:  # a notifier bug must not stop the others
                error = DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)
            seconds = time.perf_counter() - started
            sent_at = self.clock() if self.clock else now
            row.attempts += 1
            session.add(DeliveryAttempt(
                message_id=mid, at=sent_at, ok=error is None,
                retryable=bool(error and error.retryable),
                status_code=error.status if error else None,
                error=error.reason if error else "", seconds=seconds))
            if error is None:
                row.status, row.sent_at, row.receipt, row.last_error = "sent", sent_at, \
                    receipt[:200], ""
                stats.sent += 1
                stats.latencies.append((sent_at - row.detected_at).total_seconds())
            elif error.retryable and row.attempts < self.max_attempts:
                row.last_error = error.reason
                row.next_attempt_at = self._next_attempt(now, row.attempts, error.retry_after)
                stats.retried += 1
            else:
                row.status, row.last_error = "dead", error.reason
                stats.dead += 1

    def _next_attempt(self, now: datetime, attempts: int, retry_after: float | None) -> datetime:
        """When to try again; whatever a receiver said, a time the store can hold."""
        try:
            return now + timedelta(seconds=self.backoff(attempts, retry_after))
        except (OverflowError, ValueError, TypeError):  # e.g. a notifier's odd retry_after
            return now + timedelta(seconds=self.max_retry_after)

    def _message(self, session: Session, row: OutboxMessage) -> Message:
        records = {a.alert_id: a for a in session.scalars(
            select(AlertRecord).where(AlertRecord.alert_id.in_(row.alert_ids)))}
        views = tuple(view(records[i]) for i in row.alert_ids if i in records)
        links = {v.alert_id: self.links(v.alert_id, row.rep_id) for v in views} \
            if self.links and row.kind != "notice" else {}
        recipient = Recipient(row.channel, row.address, row.recipient_name,  # type: ignore[arg-type]
                              row.rep_id, row.timezone)
        return Message(message_id=row.message_id, recipient=recipient,
                       kind=row.kind, subject=row.subject,  # type: ignore[arg-type]
                       alerts=views, text=row.text, feedback=links,
                       maybe_delivered=self._maybe_delivered(session, row))

    @staticmethod
    def _maybe_delivered(session: Session, row: OutboxMessage) -> bool:
        """Whether the last attempt may have reached the receiver although it failed: no
        HTTP refusal (a timeout, a lost connection, a notifier bug) or a 5xx."""
        if row.attempts == 0:
            return False
        last = session.scalars(select(DeliveryAttempt).where(
            DeliveryAttempt.message_id == row.message_id)
            .order_by(DeliveryAttempt.id.desc()).limit(1)).first()
        return last is not None and not last.ok and (
            last.status_code is None or last.status_code >= 500)


def view(alert: AlertRecord) -> AlertView:
    """What a message shows of a stored alert."""
    return AlertView(alert_id=alert.alert_id, detector=alert.detector, kind=alert.kind,
                     severity=alert.severity, title=alert.title,
                     explanation=alert.explanation, action=alert.action,
                     subject_kind=alert.subject_kind, subject_id=alert.subject_id,
                     occurred_at=alert.occurred_at, value=alert.value,
                     evidence=tuple(alert.evidence), facts=dict(alert.facts))
