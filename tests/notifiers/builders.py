"""Messages for the notifier tests: alerts with real numbers in their explanations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sia.notifiers.base import AlertView, FeedbackLinks, Message, MessageKind, Recipient
from sia.notifiers.tokens import feedback_links

FEEDBACK_SECRET = b"feedback-secret-for-tests-0123456789"
FEEDBACK_BASE = "https://sia.example.test"
NOW = int(datetime(2024, 3, 1, 9, 0, tzinfo=UTC).timestamp())


def alert_view(i: int = 1, **changes: object) -> AlertView:
    """Alert number `i`: a drift alert on customer C{i} with its numbers in the text."""
    fields: dict[str, object] = {
        "alert_id": f"al-{i:04d}",
        "detector": "drift",
        "kind": "value_erosion",
        "severity": ("high", "medium", "low")[i % 3],
        "title": f"Acme {i} orders dropped 75%",
        "explanation": (f"Acme {i} ordered 12.0 times a month on average over the last "
                        f"6 months but only 3 times in the last 30 days; 4,820.50 of "
                        f"monthly revenue is at risk."),
        "action": "Call the buyer this week and ask about the last order.",
        "subject_kind": "customer",
        "subject_id": f"C{i:04d}",
        "occurred_at": datetime(2024, 3, 1, 8, 30, tzinfo=UTC) + timedelta(minutes=i),
        "value": 4820.5,
        "evidence": tuple(f"ev-{i}-{n}" for n in range(7)),
        "facts": {"orders_per_month": 12.0, "orders_last_30d": 3, "revenue_at_risk": 4820.5},
    }
    fields.update(changes)
    return AlertView(**fields)  # type: ignore[arg-type]


def links_for(alerts: tuple[AlertView, ...], rep_id: str | None) -> dict[str, FeedbackLinks]:
    """Signed feedback links for each alert, as the delivery stage builds them."""
    return {a.alert_id: feedback_links(FEEDBACK_BASE, FEEDBACK_SECRET, a.alert_id, rep_id, NOW)
            for a in alerts}


def message(kind: MessageKind = "alert", n: int = 1, *, address: str = "-",
            channel: str = "console", subject: str | None = None, text: str = "",
            message_id: str | None = None, alerts: tuple[AlertView, ...] | None = None,
            rep_id: str | None = "rep-7") -> Message:
    """A message of `kind` with `n` alerts (none for a notice) to one recipient."""
    if alerts is None:
        alerts = () if kind == "notice" else tuple(alert_view(i) for i in range(1, n + 1))
    recipient = Recipient(channel=channel, address=address, name="Dana Reyes",  # type: ignore[arg-type]
                          rep_id=rep_id, timezone="Europe/Berlin")
    default_subject = {"alert": alerts[0].title if alerts else "",
                       "group": f"{len(alerts)} alerts for Acme",
                       "digest": f"Your SIA digest: {len(alerts)} alerts",
                       "notice": "Your snooze of customer C0001 ended"}[kind]
    if kind == "notice" and not text:
        text = "You snoozed alerts about Acme 1 for 7 days; they are back on."
    return Message(
        message_id=message_id or f"msg-{kind}-{n}",
        recipient=recipient, kind=kind, subject=subject or default_subject, alerts=alerts,
        text=text, feedback=links_for(alerts, rep_id))
