"""Feedback: Slack's signed interactivity requests and email links, stored and learned."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from sia.alerts.store import AlertStore
from sia.delivery.dispatcher import ensure_tables
from sia.delivery.tables import FeedbackRecord, Snooze
from sia.feedback.relevance import Relevance
from sia.feedback.server import FeedbackServer
from sia.feedback.slack_signature import sign
from sia.notifiers.tokens import feedback_links

from .conftest import alert

SIGNING = b"slack-signing-secret-for-tests"
FEEDBACK = b"feedback-secret-for-tests"


@pytest.fixture()
def server(store: AlertStore) -> Iterator[FeedbackServer]:
    ensure_tables(store)
    s = FeedbackServer(store, feedback_secret=FEEDBACK, slack_signing_secret=SIGNING).start()
    yield s
    s.stop()


def slack_request(server: FeedbackServer, alert_id: str, action: str,
                  *, secret: bytes = SIGNING, age: float = 0.0) -> httpx.Response:
    payload = {"type": "block_actions", "user": {"id": "U1"},
               "actions": [{"action_id": action,
                            "value": json.dumps({"alert_id": alert_id})}]}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(time.time() - age))
    return httpx.post(f"{server.url}/slack/interactivity", content=body, headers={
        "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(secret, ts, body),
        "Content-Type": "application/x-www-form-urlencoded"})


def verdicts(store: AlertStore) -> list[tuple[str, str, str]]:
    with Session(store.engine) as session:
        return [(f.alert_id, f.verdict, f.source) for f in
                session.scalars(select(FeedbackRecord).order_by(FeedbackRecord.id))]


def test_signed_slack_buttons_are_recorded(server: FeedbackServer, store: AlertStore) -> None:
    a = alert("C1")
    store.add([a])
    response = slack_request(server, a.alert_id, "sia_useful")
    assert response.status_code == 200 and response.json() == {"recorded": 1}
    assert verdicts(store) == [(a.alert_id, "useful", "slack")]


@pytest.mark.parametrize(("secret", "age", "why"), [
    (b"forged", 0.0, "bad signature"),
    (SIGNING, 600.0, "stale request"),
])
def test_forged_or_stale_slack_requests_are_refused(
        server: FeedbackServer, store: AlertStore, secret: bytes, age: float, why: str) -> None:
    a = alert("C1")
    store.add([a])
    response = slack_request(server, a.alert_id, "sia_useful", secret=secret, age=age)
    assert response.status_code == 401 and why in response.text
    assert verdicts(store) == []


def test_snooze_button_snoozes_the_customer_for_seven_days(
        server: FeedbackServer, store: AlertStore) -> None:
    a = alert("C3")
    store.add([a])
    assert slack_request(server, a.alert_id, "sia_snooze").status_code == 200
    with Session(store.engine) as session:
        (snoozed,) = session.scalars(select(Snooze)).all()
    assert (snoozed.scope, snoozed.target, snoozed.who) == ("customer", "C3", "slack:U1")
    days = (snoozed.until - snoozed.created_at).total_seconds() / 86400
    assert days == pytest.approx(7.0)


def test_email_links_confirm_before_recording_and_expire(
        server: FeedbackServer, store: AlertStore) -> None:
    a = alert("C1")
    store.add([a])
    links = feedback_links(server.url, FEEDBACK, a.alert_id, "R1", int(time.time()))
    page = httpx.get(links.not_useful)
    assert page.status_code == 200 and "Confirm: Not useful" in page.text
    assert verdicts(store) == []  # a mail scanner following the link records nothing
    token = links.not_useful.split("token=")[1]
    done = httpx.post(f"{server.url}/feedback/email", data={"token": token})
    assert done.status_code == 200 and "recorded" in done.text
    assert verdicts(store) == [(a.alert_id, "not_useful", "email")]
    old = feedback_links(server.url, FEEDBACK, a.alert_id, "R1", int(time.time()) - 30 * 86400)
    assert httpx.get(old.useful).status_code == 400
    tampered = links.useful.replace("token=", "token=x")
    assert httpx.get(tampered).status_code == 400


def test_relevance_learns_what_a_rep_finds_useful(store: AlertStore) -> None:
    ensure_tables(store)
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
