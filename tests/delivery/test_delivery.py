"""Delivery end to end: routing, noise control, outbox, retries, against a real receiver."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

from notifiers.servers import WebhookReceiver  # type: ignore[import-not-found]
from sqlalchemy import select
from sqlalchemy.orm import Session

from sia.alerts.store import AlertStore
from sia.delivery.dispatcher import snooze
from sia.delivery.service import Delivery
from sia.delivery.tables import AlertRoute, DeliveryAttempt, OutboxMessage
from sia.delivery.worker import DeliveryWorker

from .conftest import T0, alert, catalog, routing_yaml


def delivery(store: AlertStore, notifier: Any, routes: Path, **worker: Any) -> Delivery:
    work = DeliveryWorker(store, {"webhook": notifier}, base_delay=30, max_delay=600,
                          rng=random.Random(1), **worker)
    return Delivery(store, catalog(), {}, routes=routes, worker=work)


def live(d: Delivery, *minutes: float) -> None:
    """Step at each of these minutes after T0, as a live service routes alerts as they come
    (every noise control runs on the time of the step, not of the alert's events)."""
    for m in minutes:
        d.step(T0 + timedelta(minutes=m))


def messages(store: AlertStore) -> list[OutboxMessage]:
    with Session(store.engine) as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at,
                                                                   OutboxMessage.message_id)))


def test_alerts_about_one_account_in_the_window_become_one_message(
        store: AlertStore, receiver: WebhookReceiver, webhook: Any, tmp_path: Path) -> None:
    store.add([alert("C1", 0), alert("C1", 4), alert("C1", 9), alert("C2", 5)])
    d = delivery(store, webhook, routing_yaml(tmp_path / "r.yaml", receiver.url))
    live(d, 0, 4, 5)
    assert d.step(T0 + timedelta(minutes=9)).sent == 0  # windows still open
    stats = d.step(T0 + timedelta(minutes=16))
    assert stats.sent == 2
    bodies = sorted((r.json() for r in receiver.received), key=lambda b: len(b["alerts"]))
    assert [len(b["alerts"]) for b in bodies] == [1, 3]
    assert bodies[1]["kind"] == "group" and "3 alerts about C1" in bodies[1]["subject"]
    assert all(r.verified for r in receiver.received)


def test_over_budget_alerts_are_shed_by_priority_into_the_digest(
        store: AlertStore, receiver: WebhookReceiver, webhook: Any, tmp_path: Path) -> None:
    # four accounts' windows close together for one recipient with a budget of 2 a day
    store.add([alert("C1", 0, value=10), alert("C2", 1, value=5000), alert("C3", 2, value=50),
               alert("C4", 3, score=0.95, value=9000)])
    d = delivery(store, webhook, routing_yaml(tmp_path / "r.yaml", receiver.url, budget=2))
    live(d, 3)
    d.step(T0 + timedelta(minutes=15))
    immediate = {a["subject_id"] for r in receiver.received for a in r.json()["alerts"]}
    assert immediate == {"C4", "C2"}  # the two with most at stake
    # nothing silent: the other two arrive in the next morning's digest, saying why
    d.step(T0 + timedelta(days=1))
    digest = receiver.received[-1].json()
    assert digest["kind"] == "digest"
    assert {a["subject_id"] for a in digest["alerts"]} == {"C1", "C3"}
    assert "2 over your daily budget" in digest["subject"]
    with Session(store.engine) as session:
        shed = session.scalars(select(AlertRoute).where(AlertRoute.disposition == "shed")).all()
    assert len(shed) == 2


def test_low_severity_goes_to_the_daily_digest_at_local_time(
        store: AlertStore, receiver: WebhookReceiver, webhook: Any, tmp_path: Path) -> None:
    store.add([alert("C1", 0, severity="low"), alert("C2", 30, severity="low")])
    d = delivery(store, webhook, routing_yaml(tmp_path / "r.yaml", receiver.url))
    assert d.step(T0 + timedelta(hours=12)).sent == 0
    # 08:00 in London on 5 March is 08:00 UTC (GMT)
    assert d.step(T0.replace(day=5, hour=7, minute=59)).sent == 0
    assert d.step(T0.replace(day=5, hour=8)).sent == 1
    (body,) = [r.json() for r in receiver.received]
    assert body["kind"] == "digest" and len(body["alerts"]) == 2


def test_quiet_hours_hold_an_alert_until_morning(
        store: AlertStore, receiver: WebhookReceiver, webhook: Any, tmp_path: Path) -> None:
    store.add([alert("C1", 11 * 60)])  # 20:00 London
    d = delivery(store, webhook,
                 routing_yaml(tmp_path / "r.yaml", receiver.url, quiet="19:00-07:30"))
    assert d.step(T0.replace(hour=20)).sent == 0  # routed at 20:00
    assert d.step(T0.replace(day=5, hour=7, minute=29)).sent == 0
    assert d.step(T0.replace(day=5, hour=7, minute=30)).sent == 1


def test_snooze_holds_alerts_and_ends_with_a_notice_and_mute_is_silent(
        store: AlertStore, receiver: WebhookReceiver, webhook: Any, tmp_path: Path) -> None:
    snooze(store, scope="customer", target="C1", who="Rep R1", why="on holiday",
           until=T0 + timedelta(days=7), now=T0 - timedelta(hours=1))
    snooze(store, scope="customer", target="C2", who="Rep R1", why="handled by phone",
           until=T0 + timedelta(days=3), now=T0 - timedelta(hours=1), kind="mute")
    store.add([alert("C1", 0), alert("C1", 60 * 24), alert("C2", 0)])
    d = delivery(store, webhook, routing_yaml(tmp_path / "r.yaml", receiver.url))
    live(d, 0, 60 * 24)
    d.step(T0 + timedelta(days=6))
    assert receiver.received == []
    d.step(T0 + timedelta(days=7))
    (notice,) = [r.json() for r in receiver.received]
    assert notice["kind"] == "notice" and notice["subject"] == "Snooze ended: customer C1"
    assert "on holiday" in notice["text"] and "2 alerts arrived meanwhile" in notice["text"]


def test_receiver_down_then_back_every_alert_arrives_once(
        store: AlertStore, receiver: WebhookReceiver, webhook: Any, tmp_path: Path) -> None:
    store.add([alert(c, i) for i, c in enumerate(["C1", "C2", "C3"])])
    d = delivery(store, webhook, routing_yaml(tmp_path / "r.yaml", receiver.url))
    live(d, 2)
    receiver.reply_next(503, n=3)  # down for the first round
    now = T0 + timedelta(minutes=15)
    first = d.step(now)
    assert (first.sent, first.retried) == (0, 3)
    for _ in range(6):  # back: retries go out when their backoff is due
        now += timedelta(minutes=10)
        d.step(now)
    delivered = [r for r in receiver.received if r.status == 200]
    keys = [r.headers["idempotency-key"] for r in delivered]
    assert len(keys) == 3 and len(set(keys)) == 3  # every alert once
    assert {m.status for m in messages(store)} == {"sent"}
    with Session(store.engine) as session:
        attempts = session.scalars(select(DeliveryAttempt)).all()
    assert len(attempts) == 6 and sum(a.ok for a in attempts) == 3


def test_retry_after_is_honoured_and_permanent_errors_dead_letter(
        store: AlertStore, receiver: WebhookReceiver, webhook: Any, tmp_path: Path) -> None:
    store.add([alert("C1", 0), alert("C3", 0)])
    d = delivery(store, webhook, routing_yaml(tmp_path / "r.yaml", receiver.url))
    live(d, 0)
    receiver.reply_next(429, {"Retry-After": "3600"})
    receiver.reply_next(400, body="bad payload")
    now = T0 + timedelta(minutes=15)
    d.step(now)
    by_status = {m.status: m for m in messages(store)}
    assert by_status["dead"].last_error.startswith("webhook") or "400" in \
        by_status["dead"].last_error
    waiting = by_status["queued"]
    assert waiting.next_attempt_at >= now + timedelta(seconds=3600)
    assert d.step(now + timedelta(minutes=59)).sent == 0
    assert d.step(now + timedelta(hours=1, seconds=1)).sent == 1


def test_dead_letter_after_max_attempts(
        store: AlertStore, receiver: WebhookReceiver, webhook: Any, tmp_path: Path) -> None:
    store.add([alert("C1", 0)])
    d = delivery(store, webhook, routing_yaml(tmp_path / "r.yaml", receiver.url),
                 max_attempts=3)
    live(d, 0)
    receiver.reply_next(500, n=10)
    now = T0 + timedelta(minutes=15)
    for _ in range(5):
        d.step(now)
        now += timedelta(hours=1)
    (message,) = messages(store)
    assert (message.status, message.attempts) == ("dead", 3)
    assert len(receiver.received) == 3


def test_a_crash_between_detection_and_delivery_loses_nothing_and_repeats_nothing(
        store: AlertStore, receiver: WebhookReceiver, webhook: Any, tmp_path: Path) -> None:
    routes = routing_yaml(tmp_path / "r.yaml", receiver.url)
    store.add([alert("C1", 0), alert("C2", 1)])
    first = delivery(store, webhook, routes)
    first.dispatcher.route_pending(T0 + timedelta(minutes=1))  # ... and dies before planning
    store.add([alert("C3", 2), alert("C1", 0)])  # the replay after restart repeats C1's alert
    again = delivery(store, webhook, routes)
    live(again, 2)
    again.step(T0 + timedelta(minutes=20))
    again.step(T0 + timedelta(minutes=40))
    subjects = sorted(a["subject_id"] for r in receiver.received for a in r.json()["alerts"])
    assert subjects == ["C1", "C2", "C3"]


def test_demo_delivers_to_a_configured_webhook(
        receiver: WebhookReceiver, tmp_path: Path, monkeypatch: Any) -> None:
    from typer.testing import CliRunner

    from sia.cli import app
    from sia.settings import get_settings

    from .conftest import WEBHOOK_SECRET

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIA_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("SIA_WEBHOOK_SECRET", WEBHOOK_SECRET.decode())
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["demo", "--db", str(tmp_path / "sia-demo.db"),
                                          "--top", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"sent to webhook {receiver.url}" in result.output.replace("\n", "")
    delivered = [r for r in receiver.received if r.status == 200]
    assert delivered and all(r.verified for r in delivered)
    kinds = {r.json()["kind"] for r in delivered}
    assert kinds <= {"alert", "group", "digest", "notice"} and "digest" in kinds
    assert not (tmp_path / "sia-demo-deliveries.txt").exists()
