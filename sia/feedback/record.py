"""Store a verdict on an alert: one per alert and person; a snooze verdict also snoozes
the customer for 7 days.

A second click on the same button (a retried Slack action, a link opened twice) finds
the verdict already there and changes nothing; a different button replaces the earlier
verdict. Either way the relevance model learns one verdict per alert and person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sia.alerts.store import AlertRecord, AlertStore
from sia.delivery.dispatcher import snooze
from sia.delivery.tables import AlertRoute, FeedbackRecord

VERDICTS = ("useful", "not_useful", "done", "snooze_7d")
USEFUL = {"useful": True, "done": True, "not_useful": False}  # what the relevance model learns


class UnknownAlert(LookupError):
    """Feedback named an alert the store does not hold."""


@dataclass(frozen=True)
class Recorded:
    """What became of a verdict: new, the same as before, or replacing another."""

    feedback_id: int
    outcome: Literal["recorded", "unchanged", "changed"]
    previous: str | None = None


def rep_for(store: AlertStore, alert_id: str, address: str) -> str | None:
    """The rep an alert was routed to at this address (a Slack user id, an email)."""
    with Session(store.engine) as session:
        route = session.scalars(select(AlertRoute).where(
            AlertRoute.alert_id == alert_id, AlertRoute.address == address)).first()
        return route.rep_id if route else None


def voter_of(rep_id: str | None, who: str) -> str:
    """Who a verdict counts for: the rep when known, else the source's name for them."""
    return f"rep:{rep_id}" if rep_id else who[:200]


def record_feedback(store: AlertStore, *, alert_id: str, verdict: str, rep_id: str | None,
                    source: str, who: str, now: datetime) -> Recorded:
    """Keep the verdict (one per alert and voter); for snooze_7d also snooze the alert's
    subject."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
    voter = voter_of(rep_id, who)
    for _ in range(2):  # a concurrent first click can win the insert: then read its row
        try:
            recorded, subject = _upsert(store, alert_id, verdict, rep_id, source, voter, now)
            break
        except IntegrityError:
            continue
    else:
        raise RuntimeError(f"feedback on {alert_id} by {voter} could not be stored")
    if verdict == "snooze_7d" and recorded.outcome != "unchanged":
        snooze(store, scope="customer", target=subject, who=who,
               why=f"snoozed from {source} on alert {alert_id}",
               until=now + timedelta(days=7), now=now, rep_id=rep_id)
    return recorded


def _upsert(store: AlertStore, alert_id: str, verdict: str, rep_id: str | None, source: str,
            voter: str, now: datetime) -> tuple[Recorded, str]:
    with Session(store.engine) as session, session.begin():
        alert = session.get(AlertRecord, alert_id)
        if alert is None:
            raise UnknownAlert(f"no alert {alert_id!r}")
        row = session.scalars(select(FeedbackRecord).where(
            FeedbackRecord.alert_id == alert_id, FeedbackRecord.voter == voter)).first()
        if row is not None and row.verdict == verdict:
            return Recorded(row.id, "unchanged", verdict), alert.subject_id
        if row is not None:
            previous = row.verdict
            row.verdict, row.source, row.at, row.rep_id = verdict, source, now, rep_id
            session.flush()
            return Recorded(row.id, "changed", previous), alert.subject_id
        row = FeedbackRecord(alert_id=alert_id, rep_id=rep_id, voter=voter, verdict=verdict,
                             source=source, at=now)
        session.add(row)
        session.flush()
        return Recorded(row.id, "recorded"), alert.subject_id
