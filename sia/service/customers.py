"""What SIA knows about one customer: reference data, learned rhythm, recent orders, open
alerts and why they were raised."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sia.access.keys import Principal
from sia.alerts.store import AlertRecord, AlertStore
from sia.delivery.tables import FeedbackRecord
from sia.engine.engine import Engine
from sia.journal import Journal

DAY = 86_400.0
CLOSED = ("done", "not_useful")  # verdicts that close an alert for the console


def customer_view(customer_id: str, *, engine: Engine | None, journal: Journal | None,
                  store: AlertStore, recent: int = 10) -> dict[str, Any] | None:
    """The customer page's data; None when SIA has never heard of the customer. Read
    `engine` under the live engine's lock."""
    reference = engine.catalog.customers.get(customer_id) if engine else None
    rhythm = _rhythm(engine, customer_id) if engine else None
    orders = [_order(json.loads(body)) for body in
              journal.customer_events(customer_id, limit=recent)] if journal else []
    alerts = _open_alerts(store, customer_id)
    if reference is None and rhythm is None and not orders and not alerts:
        return None
    owner = engine.catalog.owner_rep(customer_id) if engine else None
    return {
        "customer_id": customer_id,
        "name": reference.name if reference else None,
        "segment": reference.segment if reference else None,
        "region": reference.region if reference else None,
        "owner_rep_id": reference.owner_rep_id if reference else None,
        "owner_rep_name": owner.name if owner else None,
        "team": owner.team if owner else None,
        "rhythm": rhythm,
        "recent_orders": orders,
        "open_alerts": alerts,
        "learned_by": sorted(d.name for d in engine.detectors
                             if d.customer_state(customer_id) is not None) if engine else [],
    }


def customer_readable(found: dict[str, Any], who: Principal) -> bool:
    """Whether a key may read this customer: a rep key its own customers only, a
    team-scoped manager key its team's; others every customer."""
    if who.role == "rep":
        return bool(found["owner_rep_id"] == who.rep_id)
    if who.role == "manager" and who.team is not None:
        return bool(found["team"] == who.team)
    return True


def _rhythm(engine: Engine, customer_id: str) -> dict[str, Any] | None:
    """The purchase rhythm the drift detector learned, in days and money."""
    drift = next((d for d in engine.detectors if d.name == "drift"), None)
    state: Any = drift.customer_state(customer_id) if drift else None
    if state is None or not getattr(state, "orders", 0):
        return None
    clock = engine.clock.timestamp() / DAY if engine.clock else state.last_order_at
    typical = math.exp(state.gap_mean) if state.gaps else None
    return {
        "orders": state.orders,
        "first_order_at": _date(state.first_order_at),
        "last_order_at": _date(state.last_order_at),
        "days_since_last_order": round(clock - state.last_order_at, 1),
        "typical_days_between_orders": round(typical, 1) if typical else None,
        "next_order_expected_around": _date(state.last_order_at + typical) if typical else None,
        "typical_order_value": round(state.value_long, 2),
        "recent_order_value": round(state.value_short, 2),
        "overdue_alerted": bool(state.overdue_fired),
    }


def _order(data: dict[str, Any]) -> dict[str, Any]:
    lines = data.get("lines") or []
    amount = sum(line["quantity"] * line["unit_price"] for line in lines)
    return {"order_id": data.get("order_id"), "event_id": data.get("event_id"),
            "occurred_at": data.get("occurred_at"), "currency": data.get("currency"),
            "amount": round(amount, 2), "lines": len(lines),
            "products": [line["product_id"] for line in lines[:5]]}


def _open_alerts(store: AlertStore, customer_id: str, limit: int = 20) -> list[dict[str, Any]]:
    closed = select(FeedbackRecord.alert_id).where(FeedbackRecord.verdict.in_(CLOSED))
    with Session(store.engine) as session:
        rows = session.scalars(select(AlertRecord).where(
            AlertRecord.subject_id == customer_id, AlertRecord.alert_id.not_in(closed))
            .order_by(AlertRecord.occurred_at.desc()).limit(limit))
        return [{k: v for k, v in r.to_dict().items() if k != "evidence"} for r in rows]


def _date(day: float) -> str:
    return datetime.fromtimestamp(day * DAY, UTC).date().isoformat()
