"""Feedback: one verdict per alert and person, and what the relevance model learns from it
(the endpoints that receive it are tested in tests/api/test_feedback.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sia.alerts.store import AlertStore
from sia.delivery.tables import FeedbackRecord
from sia.feedback.record import record_feedback
from sia.feedback.relevance import Relevance

from .conftest import alert


def verdicts(store: AlertStore) -> list[tuple[str, str, str]]:
    with Session(store.engine) as session:
        return [(f.alert_id, f.verdict, f.source) for f in
                session.scalars(select(FeedbackRecord).order_by(FeedbackRecord.id))]


def test_relevance_learns_what_a_rep_finds_useful(store: AlertStore) -> None:
    drift_alerts = [alert(f"C{i}", i, detector="drift") for i in range(20)]
    cross_alerts = [alert(f"C{i}", i, detector="cross_sell") for i in range(20)]
    store.add(drift_alerts + cross_alerts)
    with Session(store.engine) as session, session.begin():
        for d, c in zip(drift_alerts, cross_alerts, strict=True):
            at = datetime.now(UTC)
            session.add(FeedbackRecord(alert_id=d.alert_id, rep_id="R1", verdict="useful",
                                       source="slack", at=at))
            session.add(FeedbackRecord(alert_id=c.alert_id, rep_id="R1", verdict="not_useful",
                                       source="slack", at=at))
    relevance = Relevance.from_store(store)
    assert relevance.labels == 40
    records = store.list(limit=100)
    drift = next(r for r in records if r.detector == "drift")
    cross = next(r for r in records if r.detector == "cross_sell")
    assert relevance.probability(drift, "R1") > 0.6 > 0.4 > relevance.probability(cross, "R1")
    assert relevance.priority(drift, "R1") > relevance.priority(cross, "R1")


def test_a_repeated_click_is_one_verdict_and_another_button_replaces_it(
        store: AlertStore) -> None:
    a = alert("C1")
    store.add([a])
    now = datetime.now(UTC)
    outcomes = [record_feedback(store, alert_id=a.alert_id, verdict=v, rep_id="R1",
                                source="slack", who="slack:U1", now=now).outcome
                for v in ("useful",) * 5 + ("not_useful",)]
    assert outcomes == ["recorded"] + ["unchanged"] * 4 + ["changed"]
    assert verdicts(store) == [(a.alert_id, "not_useful", "slack")]
    relevance = Relevance.from_store(store)
    assert relevance.labels == 1  # five clicks trained it once, and the change replaced it
    # the same rep through email is the same person; another rep is another verdict
    record_feedback(store, alert_id=a.alert_id, verdict="not_useful", rep_id="R1",
                    source="email", who="email:R1", now=now)
    record_feedback(store, alert_id=a.alert_id, verdict="useful", rep_id="R2",
                    source="slack", who="slack:U2", now=now)
    assert sorted(verdicts(store)) == [(a.alert_id, "not_useful", "slack"),
                                       (a.alert_id, "useful", "slack")]
