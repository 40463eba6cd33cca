"""Feedback from reps: API calls, Slack's buttons and email links, verified and learned.

- Slack: the request signature (v0, the signing secret) and its freshness are checked
  before the body is read as a payload; the buttons carry the alert id.
- Email: links carry a signed, expiring token (sia/notifiers/tokens.py); opening one
  records nothing (mail scanners follow links), confirming it does.
- Every verdict is one per alert and person (sia/feedback/record.py); the relevance
  model that decides what fills each rep's daily budget (in the engine process, beside
  delivery) learns it within seconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from sia.alerts.store import AlertStore
from sia.feedback.record import Recorded, UnknownAlert, record_feedback, rep_for
from sia.feedback.slack_signature import verify
from sia.notifiers.tokens import InvalidToken, read_token

SLACK_ACTIONS = {"sia_useful": "useful", "sia_not_useful": "not_useful",
                 "sia_snooze": "snooze_7d"}


class Refused(PermissionError):
    """A request that is not what it claims to be (forged, stale, expired)."""


class Malformed(ValueError):
    """A request that is not a feedback request at all."""


class NotConfigured(RuntimeError):
    """Feedback through a channel whose secret is not set."""


@dataclass(frozen=True)
class EmailClaim:
    """What a valid email link asks to record."""

    alert_id: str
    verdict: str
    rep_id: str | None


class FeedbackDesk:
    """Records verdicts (delivery's relevance model reads them from the store)."""

    def __init__(self, store: AlertStore, *, feedback_secret: bytes,
                 slack_signing_secret: bytes | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.feedback_secret = feedback_secret
        self.slack_signing_secret = slack_signing_secret
        self.clock = clock

    def now(self) -> datetime:
        """The desk's clock."""
        return datetime.fromtimestamp(self.clock(), UTC)

    def give(self, *, alert_id: str, verdict: str, rep_id: str | None, source: str,
             who: str) -> Recorded:
        """Record one verdict (raises UnknownAlert, ValueError)."""
        return record_feedback(self.store, alert_id=alert_id, verdict=verdict,
                               rep_id=rep_id, source=source, who=who, now=self.now())

    # Slack
    def slack(self, headers: Mapping[str, str], body: bytes) -> int:
        """A Slack block_actions request; returns how many verdicts it recorded."""
        if self.slack_signing_secret is None:
            raise NotConfigured("Slack feedback is not configured (SIA_SLACK_SIGNING_SECRET)")
        refused = verify(self.slack_signing_secret, headers.get("x-slack-request-timestamp"),
                         body, headers.get("x-slack-signature"), self.clock())
        if refused:
            raise Refused(refused)
        try:
            payload = json.loads(parse_qs(body.decode())["payload"][0])
            user = str(payload["user"]["id"])
            actions = list(payload["actions"])
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise Malformed("not a Slack interactivity payload") from exc
        recorded = 0
        for action in actions:
            verdict = SLACK_ACTIONS.get(_text(action, "action_id"))
            alert_id = _alert_id(_text(action, "value"))
            if verdict is None or alert_id is None:
                continue
            self.give(alert_id=alert_id, verdict=verdict, source="slack", who=f"slack:{user}",
                      rep_id=rep_for(self.store, alert_id, user))
            recorded += 1
        return recorded

    # email links
    def email_claim(self, token: str) -> EmailClaim:
        """What a link's token asks for (raises Refused when forged or expired)."""
        try:
            claim = read_token(self.feedback_secret, token, int(self.clock()))
        except InvalidToken as exc:
            raise Refused(str(exc)) from exc
        return EmailClaim(claim.alert_id, claim.verdict, claim.rep_id)

    def email_confirm(self, token: str) -> Recorded:
        """Record what a confirmed link asks for."""
        claim = self.email_claim(token)
        return self.give(alert_id=claim.alert_id, verdict=claim.verdict, rep_id=claim.rep_id,
                         source="email", who=f"email:{claim.rep_id or 'unknown'}")


def _text(action: Any, key: str) -> str:
    value = action.get(key) if isinstance(action, dict) else None
    return value if isinstance(value, str) else ""


def _alert_id(value: str) -> str | None:
    try:
        data = json.loads(value or "{}")
    except ValueError:
        return None
    alert_id = data.get("alert_id") if isinstance(data, dict) else None
    return alert_id if isinstance(alert_id, str) and alert_id else None


__all__ = ["EmailClaim", "FeedbackDesk", "Malformed", "NotConfigured", "Refused",
           "UnknownAlert"]
