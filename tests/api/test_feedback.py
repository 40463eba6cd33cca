"""Feedback through the app: rep keys, Slack's signed buttons and email links, one
verdict per alert and person, the relevance model told at once."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import httpx
import pytest
from delivery.conftest import alert  # type: ignore[import-not-found]
from sqlalchemy import select
from sqlalchemy.orm import Session

from sia.delivery.tables import FeedbackRecord, Snooze
from sia.feedback.slack_signature import sign
from sia.notifiers.tokens import feedback_links
from sia.policy import Alert

from .conftest import FEEDBACK_SECRET, SIGNING_SECRET, Server


def stored(server: Server, customer: str, rep: str = "R1", team: str = "UK") -> Alert:
    a = alert(customer)
    server.runtime.store.add([a], owner=lambda _: (rep, team))
    return a


def verdicts(server: Server) -> list[tuple[str, str, str]]:
    with Session(server.runtime.store.engine) as session:
        return [(f.alert_id, f.verdict, f.source) for f in
                session.scalars(select(FeedbackRecord).order_by(FeedbackRecord.id))]


def slack(server: Server, alert_id: str, action: str, *, secret: str = SIGNING_SECRET,
          age: float = 0.0, timestamp: str | None = None) -> httpx.Response:
    payload = {"type": "block_actions", "user": {"id": "U1"},
               "actions": [{"action_id": action, "value": json.dumps({"alert_id": alert_id})}]}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = timestamp or str(int(time.time() - age))
    return httpx.post(f"{server.url}/slack/interactivity", content=body, headers={
        "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(secret.encode(), ts, body),
        "Content-Type": "application/x-www-form-urlencoded"})


def test_signed_slack_buttons_are_recorded_once_however_often_clicked(server: Server) -> None:
    a = stored(server, "C1")
    for _ in range(5):
        response = slack(server, a.alert_id, "sia_useful")
        assert response.status_code == 200 and response.json() == {"recorded": 1}
    assert verdicts(server) == [(a.alert_id, "useful", "slack")]
    assert server.status()["relevance_labels"] == 1  # what delivery ranks by learned it


@pytest.mark.parametrize(("secret", "age", "timestamp", "why"), [
    ("forged", 0.0, None, "bad signature"),
    (SIGNING_SECRET, 600.0, None, "stale request"),
    (SIGNING_SECRET, 0.0, "nan", "timestamp"),
    (SIGNING_SECRET, 0.0, "inf", "timestamp"),
])
def test_forged_stale_or_malformed_slack_requests_are_refused(
        server: Server, secret: str, age: float, timestamp: str | None, why: str) -> None:
    a = stored(server, "C1")
    response = slack(server, a.alert_id, "sia_useful", secret=secret, age=age,
                     timestamp=timestamp)
    assert response.status_code == 401 and why in response.json()["detail"]
    assert verdicts(server) == []


def test_a_signed_body_that_is_not_a_payload_is_400_not_a_crash(server: Server) -> None:
    ts = str(int(time.time()))
    for body in (b"payload=%7Bnot-json", b"nothing=here", b"payload=%5B%5D"):
        response = httpx.post(f"{server.url}/slack/interactivity", content=body, headers={
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sign(SIGNING_SECRET.encode(), ts, body)})
        assert response.status_code == 400, response.text


def test_the_snooze_button_snoozes_the_customer_for_seven_days(server: Server) -> None:
    a = stored(server, "C3")
    assert slack(server, a.alert_id, "sia_snooze").status_code == 200
    with Session(server.runtime.store.engine) as session:
        (snoozed,) = session.scalars(select(Snooze)).all()
    assert (snoozed.scope, snoozed.target, snoozed.who) == ("customer", "C3", "slack:U1")
    assert (snoozed.until - snoozed.created_at).total_seconds() / 86400 == pytest.approx(7.0)
    assert slack(server, a.alert_id, "sia_snooze").status_code == 200
    with Session(server.runtime.store.engine) as session:
        assert len(session.scalars(select(Snooze)).all()) == 1  # a repeat snoozes once


def test_email_links_confirm_before_recording_and_expire(server: Server) -> None:
    a = stored(server, "C1")
    secret = FEEDBACK_SECRET.encode()
    links = feedback_links(server.url, secret, a.alert_id, "R1", int(time.time()))
    page = httpx.get(links.not_useful)
    assert page.status_code == 200 and "Confirm: Not useful" in page.text
    assert verdicts(server) == []  # a mail scanner following the link records nothing
    token = links.not_useful.split("token=")[1]
    done = httpx.post(f"{server.url}/feedback/email", data={"token": token})
    assert done.status_code == 200 and "recorded" in done.text
    again = httpx.post(f"{server.url}/feedback/email", data={"token": token})
    assert "already recorded" in again.text
    assert verdicts(server) == [(a.alert_id, "not_useful", "email")]
    old = feedback_links(server.url, secret, a.alert_id, "R1", int(time.time()) - 30 * 86400)
    assert httpx.get(old.useful).status_code == 400
    assert httpx.get(links.useful.replace("token=", "token=x")).status_code == 400
    forged = feedback_links(server.url, b"dev-only-feedback-secret", a.alert_id, "R1",
                            int(time.time()))
    assert httpx.get(forged.useful).status_code == 400  # the public default signs nothing


def test_reps_give_feedback_on_their_own_alerts_through_the_api(server: Server) -> None:
    mine, theirs = stored(server, "C1", rep="R1"), stored(server, "C9", rep="R2")
    with server.client("rep") as rep:
        first = rep.post(f"/v1/alerts/{mine.alert_id}/feedback", json={"verdict": "done"})
        assert first.json() == {"alert_id": mine.alert_id, "verdict": "done",
                                "outcome": "recorded", "previous": None}
        again = rep.post(f"/v1/alerts/{mine.alert_id}/feedback", json={"verdict": "done"})
        assert again.json()["outcome"] == "unchanged"
        changed = rep.post(f"/v1/alerts/{mine.alert_id}/feedback",
                           json={"verdict": "not_useful"})
        assert changed.json()["outcome"] == "changed" and changed.json()["previous"] == "done"
        assert rep.post(f"/v1/alerts/{theirs.alert_id}/feedback",
                        json={"verdict": "useful"}).status_code == 404
        assert rep.post(f"/v1/alerts/{mine.alert_id}/feedback",
                        json={"verdict": "great"}).status_code == 422
    assert verdicts(server) == [(mine.alert_id, "not_useful", "api")]
    assert server.status()["relevance_labels"] == 1  # what delivery ranks by learned it
