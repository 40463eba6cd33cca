"""Reading alerts: filtered, newest first, a page at a time; one alert with its story.

Who may read what is part of the query, not an afterthought: a rep key reads the alerts
of its rep (customers they own, and alerts about them), a team-scoped manager key those
of its team. Pages are cut by a cursor (the last alert's time and id), so a page never
repeats or skips an alert when new ones arrive meanwhile.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from sia.alerts.store import AlertRecord, AlertStore
from sia.delivery.tables import AlertRoute, DeliveryAttempt, FeedbackRecord, OutboxMessage

STATUSES = ("pending", "routed", "history")


class BadCursor(ValueError):
    """A page cursor that this service did not hand out."""


@dataclass(frozen=True)
class AlertFilter:
    """What to list; `rep_id` / `team` also carry a key's scope."""

    detector: str | None = None
    customer: str | None = None
    rep_id: str | None = None
    team: str | None = None
    status: str | None = None
    severity: str | None = None
    since: datetime | None = None
    hidden_detectors: frozenset[str] = frozenset()  # a rep's mutes, when not asked for


@dataclass(frozen=True)
class Page:
    """One page of alerts and the cursor of the next (None: the last page)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(record: AlertRecord) -> str:
    """An opaque cursor after this alert."""
    raw = json.dumps([record.occurred_at.isoformat(), record.alert_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (time, id) a cursor stands for."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, alert_id = json.loads(raw)
        return datetime.fromisoformat(at), str(alert_id)
    except (ValueError, TypeError) as exc:
        raise BadCursor(f"cursor {cursor[:40]!r} was not made by this service") from exc


def list_alerts(store: AlertStore, where: AlertFilter, *, limit: int = 50,
                cursor: str | None = None) -> Page:
    """Newest alerts first that match `where`, `limit` at a time."""
    query = select(AlertRecord)
    for condition in conditions(where):
        query = query.where(condition)
    if cursor:
        at, alert_id = decode_cursor(cursor)
        query = query.where(or_(AlertRecord.occurred_at < at,
                                and_(AlertRecord.occurred_at == at,
                                     AlertRecord.alert_id > alert_id)))
    query = query.order_by(AlertRecord.occurred_at.desc(), AlertRecord.alert_id).limit(limit + 1)
    with Session(store.engine) as session:
        rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([r.to_dict() for r in rows], encode_cursor(rows[-1]) if more and rows else None)


def conditions(where: AlertFilter) -> list[Any]:
    """The SQL conditions of `where` (a key's scope among them)."""
    out: list[Any] = []
    if where.detector:
        out.append(AlertRecord.detector == where.detector)
    if where.customer:
        out.append(AlertRecord.subject_id == where.customer)
    if where.rep_id:
        out.append(AlertRecord.rep_id == where.rep_id)
    if where.team:
        out.append(AlertRecord.team == where.team)
    if where.status:
        out.append(AlertRecord.status == where.status)
    if where.severity:
        out.append(AlertRecord.severity == where.severity)
    if where.since:
        out.append(AlertRecord.occurred_at >= where.since)
    if where.hidden_detectors:
        out.append(AlertRecord.detector.not_in(sorted(where.hidden_detectors)))
    return out


def readable(record: dict[str, Any], *, rep_id: str | None, team: str | None) -> bool:
    """Whether a key scoped to this rep or team may read an alert."""
    if rep_id is not None and record.get("rep_id") != rep_id:
        return False
    return not (team is not None and record.get("team") != team)


def get_alert(store: AlertStore, alert_id: str) -> dict[str, Any] | None:
    """One alert with its routes, messages, delivery attempts and feedback."""
    with Session(store.engine) as session:
        record = session.get(AlertRecord, alert_id)
        if record is None:
            return None
        out = record.to_dict()
        routes = list(session.scalars(select(AlertRoute).where(AlertRoute.alert_id == alert_id)
                                      .order_by(AlertRoute.channel, AlertRoute.address)))
        message_ids = sorted({r.message_id for r in routes if r.message_id})
        messages = {m.message_id: m for m in session.scalars(
            select(OutboxMessage).where(OutboxMessage.message_id.in_(message_ids)))}
        attempts: dict[str, list[DeliveryAttempt]] = {}
        for attempt in session.scalars(select(DeliveryAttempt).where(
                DeliveryAttempt.message_id.in_(message_ids)).order_by(DeliveryAttempt.id)):
            attempts.setdefault(attempt.message_id, []).append(attempt)
        out["deliveries"] = [_delivery(r, messages.get(r.message_id or ""),
                                       attempts.get(r.message_id or "", [])) for r in routes]
        out["feedback"] = [{"verdict": f.verdict, "rep_id": f.rep_id, "source": f.source,
                            "at": f.at.isoformat()} for f in session.scalars(
            select(FeedbackRecord).where(FeedbackRecord.alert_id == alert_id)
            .order_by(FeedbackRecord.id))]
        return out


def _delivery(route: AlertRoute, message: OutboxMessage | None,
              attempts: Sequence[DeliveryAttempt]) -> dict[str, Any]:
    return {
        "channel": route.channel, "address": route.address, "rep_id": route.rep_id,
        "disposition": route.disposition, "due_at": route.due_at.isoformat(),
        "why": route.why, "message_id": route.message_id,
        "status": message.status if message else "planned",
        "sent_at": message.sent_at.isoformat() if message and message.sent_at else None,
        "attempts": [{"at": a.at.isoformat(), "ok": a.ok, "status_code": a.status_code,
                      "error": a.error} for a in attempts],
    }


def inbox(store: AlertStore, where: AlertFilter, *, voter: str | None,
          limit: int = 100) -> list[dict[str, Any]]:
    """What a person's inbox shows: the newest `limit` alerts that match `where` (their
    scope), newest day first and, within a day, the most money at stake (then the
    highest score) first. Each carries `my_verdict`: what `voter` (as
    `sia.feedback.record.voter_of` names them) last said of it, or None."""
    items = list_alerts(store, where, limit=limit).items
    mine: dict[str, str] = {}
    if voter is not None and items:
        with Session(store.engine) as session:
            for row in session.scalars(select(FeedbackRecord).where(
                    FeedbackRecord.alert_id.in_([a["alert_id"] for a in items]),
                    FeedbackRecord.voter == voter)):
                mine[row.alert_id] = row.verdict
    for item in items:
        item["my_verdict"] = mine.get(item["alert_id"])
    # occurred_at is ISO 8601 in UTC: its first 10 characters are the day
    items.sort(key=lambda a: (a["occurred_at"][:10], a["value"], a["score"]), reverse=True)
    return items
