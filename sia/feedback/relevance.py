"""Which alerts a rep finds worth their attention, learned online from their feedback.

One logistic regression (river) over the detector, kind and severity of an alert, its
score and money at stake, and crossed rep-by-detector indicators: each rep's verdicts
shift their own ranking without needing a model per rep. The priority it gives decides
what fills a rep's daily budget and what is shed into the digest.
"""

from __future__ import annotations

import math
from typing import Any

from river import linear_model, optim
from sqlalchemy import select
from sqlalchemy.orm import Session

from sia.alerts.store import AlertRecord, AlertStore
from sia.delivery.dispatcher import default_priority
from sia.delivery.tables import FeedbackRecord
from sia.feedback.record import USEFUL
from sia.findings import SEVERITY_RANK


class Relevance:
    """P(useful | alert, rep), learned from feedback; the dispatcher's priority function."""

    def __init__(self) -> None:
        self.model: Any = _fresh_model()
        self.labels = 0

    @staticmethod
    def features(alert: AlertRecord, rep_id: str | None) -> dict[str, float]:
        """Indicators and a few numbers; rep x detector crosses personalise."""
        rep = rep_id or "-"
        return {
            f"detector={alert.detector}": 1.0,
            f"kind={alert.detector}/{alert.kind}": 1.0,
            f"rep={rep}|detector={alert.detector}": 1.0,
            "severity": float(SEVERITY_RANK.get(alert.severity, 0)),
            "score": alert.score,
            "log_value": math.log1p(max(alert.value, 0.0)) / 10,
        }

    def learn(self, alert: AlertRecord, rep_id: str | None, useful: bool) -> None:
        """One verdict."""
        self.model.learn_one(self.features(alert, rep_id), useful)
        self.labels += 1

    def probability(self, alert: AlertRecord, rep_id: str | None) -> float:
        """P(useful); 0.5 before any feedback."""
        if not self.labels:
            return 0.5
        return float(self.model.predict_proba_one(self.features(alert, rep_id)).get(True, 0.5))

    def priority(self, alert: AlertRecord, rep_id: str | None) -> float:
        """Default priority scaled by how useful this rep finds alerts like it."""
        return default_priority(alert, rep_id) * (0.5 + self.probability(alert, rep_id))

    @classmethod
    def from_store(cls, store: AlertStore) -> Relevance:
        """Learn from every stored verdict, oldest first."""
        relevance = cls()
        relevance.relearn(store)
        return relevance

    def relearn(self, store: AlertStore) -> None:
        """Forget, then learn again from the store's verdicts (one per alert and person;
        snoozes say nothing either way): after a verdict was replaced."""
        self.model = _fresh_model()
        self.labels = 0
        with Session(store.engine) as session:
            rows = session.execute(select(FeedbackRecord, AlertRecord).join(
                AlertRecord, AlertRecord.alert_id == FeedbackRecord.alert_id)
                .where(FeedbackRecord.verdict.in_(list(USEFUL)))
                .order_by(FeedbackRecord.id))
            for feedback, alert in rows:
                self.learn(alert, feedback.rep_id, USEFUL[feedback.verdict])


def _fresh_model() -> Any:
    return linear_model.LogisticRegression(optimizer=optim.SGD(0.1), l2=1e-3)
