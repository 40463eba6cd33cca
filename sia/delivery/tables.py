"""Outbox tables: what was planned for whom, every message, every attempt, snoozes, feedback.

Everything the delivery stage decides is written here before anything is sent, so a
crash between detection and delivery loses nothing: the dispatcher and the worker pick
up where the store says they were.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sia.alerts.store import Base, UtcDateTime


class AlertRoute(Base):
    """One alert for one recipient, and what became of it."""

    __tablename__ = "alert_routes"

    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.alert_id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    address: Mapped[str] = mapped_column(String(400), primary_key=True)
    recipient_name: Mapped[str] = mapped_column(String(200), default="")
    rep_id: Mapped[str | None] = mapped_column(String(200), index=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # immediate | grouped | digest | shed (over budget, into the digest) | snoozed | muted
    disposition: Mapped[str] = mapped_column(String(16), index=True)
    group_key: Mapped[str] = mapped_column(String(400), default="")
    due_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    priority: Mapped[float] = mapped_column(Float, default=0.0)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    why: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str | None] = mapped_column(String(64), index=True)
    routed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class OutboxMessage(Base):
    """A message to send (or sent, or dead-lettered)."""

    __tablename__ = "messages"

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(400))
    recipient_name: Mapped[str] = mapped_column(String(200), default="")
    rep_id: Mapped[str | None] = mapped_column(String(200), index=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    kind: Mapped[str] = mapped_column(String(16))  # alert | group | digest | notice
    subject: Mapped[str] = mapped_column(Text)
    alert_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    text: Mapped[str] = mapped_column(Text, default="")
    budget_day: Mapped[str] = mapped_column(String(10), default="")  # rep's local day it used
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued | sent | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    detected_at: Mapped[datetime] = mapped_column(UtcDateTime())  # earliest alert in it
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    receipt: Mapped[str] = mapped_column(String(200), default="")
    last_error: Mapped[str] = mapped_column(Text, default="")


class DeliveryAttempt(Base):
    """Every try to send a message, successful or not."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.message_id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    ok: Mapped[bool] = mapped_column(Boolean)
    retryable: Mapped[bool] = mapped_column(Boolean, default=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text, default="")
    seconds: Mapped[float] = mapped_column(Float, default=0.0)


class Snooze(Base):
    """A snooze or mute: who, why, until when, on what."""

    __tablename__ = "snoozes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(16))  # customer | alert | detector
    target: Mapped[str] = mapped_column(String(400), index=True)
    rep_id: Mapped[str | None] = mapped_column(String(200))  # None: for everyone
    kind: Mapped[str] = mapped_column(String(8))  # snooze | mute
    who: Mapped[str] = mapped_column(String(200))
    why: Mapped[str] = mapped_column(Text, default="")
    until: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_notice: Mapped[bool] = mapped_column(Boolean, default=False)


class FeedbackRecord(Base):
    """What a person said an alert was worth: one verdict per alert and person (a second
    click replaces the first, it does not count twice)."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("alert_id", "voter"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.alert_id"), index=True)
    rep_id: Mapped[str | None] = mapped_column(String(200))
    # who gave it: "rep:<id>" when the rep is known, else the source's own name for them
    voter: Mapped[str] = mapped_column(String(200), default="")
    verdict: Mapped[str] = mapped_column(String(16))  # useful | not_useful | done | snooze_7d
    source: Mapped[str] = mapped_column(String(16))  # slack | email | api
    at: Mapped[datetime] = mapped_column(UtcDateTime())
