"""Store a verdict on an alert; a snooze verdict also snoozes the customer for 7 days."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from sia.alerts.store import AlertRecord, AlertStore
from sia.delivery.dispatcher import ensure_tables, snooze
from sia.delivery.tables import AlertRoute, FeedbackRecord

VERDICTS = ("useful", "not_useful", "snooze_7d")


class UnknownAlert(LookupError):
    """Feedback named an alert the store does not hold."""


def rep_for(store: AlertStore, alert_id: str, address: str) -> str | None:
    """The rep an alert was routed to at this address (a Slack user id, an email)."""
    with Session(store.engine) as session:
        route = session.scalars(select(AlertRoute).where(
            AlertRoute.alert_id == alert_id, AlertRoute.address == address)).first()
        return route.rep_id if route else None


def record_feedback(store: AlertStore, *, alert_id: str, verdict: str, rep_id: str | None,
                    source: str, who: str, now: datetime) -> int:
    """Keep the verdict; for snooze_7d also snooze the alert's subject. Returns its id."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
    ensure_tables(store)
    with Session(store.engine) as session, session.begin():
        alert = session.get(AlertRecord, alert_id)
        if alert is None:
            raise UnknownAlert(f"no alert {alert_id!r}")
        subject = alert.subject_id
        row = FeedbackRecord(alert_id=alert_id, rep_id=rep_id, verdict=verdict,
                             source=source, at=now)
        session.add(row)
        session.flush()
        feedback_id = row.id
    if verdict == "snooze_7d":
        snooze(store, scope="customer", target=subject, who=who,
               why=f"snoozed from {source} on alert {alert_id}",
               until=now + timedelta(days=7), now=now, rep_id=rep_id)
    return feedback_id
