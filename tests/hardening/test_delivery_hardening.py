"""Delivery hardening (issue 18, "Delivery and feedback server"): a receiver cannot park or
poison a message with its Retry-After, and a replay of history does not reach people.

Real servers: the webhook receiver of tests/notifiers/servers.py, a SQLite store.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from delivery.conftest import T0, alert, catalog, routing_yaml  # type: ignore[import-not-found]
from notifiers.servers import WEBHOOK_SECRET, WebhookReceiver  # type: ignore[import-not-found]
from sqlalchemy import select
from sqlalchemy.orm import Session

from sia.alerts.store import AlertRecord, AlertStore
from sia.delivery.dispatcher import snooze
from sia.delivery.service import Delivery
from sia.delivery.tables import AlertRoute, DeliveryAttempt, OutboxMessage
from sia.delivery.worker import DeliveryWorker
from sia.notifiers.registry import build_notifier

DAY = timedelta(days=1)
MAX_RETRY_AFTER_S = DAY.total_seconds()  # the documented cap: a day


def delivery(store: AlertStore, routes: Path, **worker: Any) -> Delivery:
    webhook = build_notifier("webhook", {"secret": WEBHOOK_SECRET, "timeout": 2})
    work = DeliveryWorker(store, {"webhook": webhook}, base_delay=30, max_delay=600,
                          rng=random.Random(1), **worker)
    return Delivery(store, catalog(), {}, routes=routes, worker=work)


def messages(store: AlertStore) -> list[OutboxMessage]:
    with Session(store.engine) as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.message_id)))


def attempts(store: AlertStore) -> list[DeliveryAttempt]:
    with Session(store.engine) as session:
        return list(session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id)))


# --- Retry-After: inf, 3e11, dates in the year 9999 -------------------------------------

@pytest.mark.parametrize("retry_after", ["inf", "3e11", "1e309", "nan", "Infinity",
                                         "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_an_absurd_retry_after_is_recorded_and_capped_not_a_crash(
        store: AlertStore, receiver: WebhookReceiver, tmp_path: Path, retry_after: str) -> None:
    # before: OverflowError out of `sia deliver` before the attempt was stored (inf, 1e309),
    # or the message parked until the year 5195 and beyond (3e11)
    store.add([alert("C1", 0), alert("C3", 0)])
    d = delivery(store, routing_yaml(tmp_path / "r.yaml", receiver.url))
    d.step(T0)  # routed as they happen
    receiver.reply_next(429, {"Retry-After": retry_after})  # the first send is refused
    now = T0 + timedelta(minutes=15)
    stats = d.step(now)
    assert (stats.sent, stats.retried) == (1, 1)  # the other message is not starved
    (waiting,) = [m for m in messages(store) if m.status == "queued"]
    assert waiting.attempts == 1 and "429" in waiting.last_error
    assert now < waiting.next_attempt_at <= now + timedelta(seconds=MAX_RETRY_AFTER_S)
    assert [a.ok for a in attempts(store)].count(False) == 1  # the attempt is recorded


def test_a_receiver_always_saying_retry_after_inf_dead_letters_the_message(
        store: AlertStore, receiver: WebhookReceiver, tmp_path: Path) -> None:
    store.add([alert("C1", 0)])
    d = delivery(store, routing_yaml(tmp_path / "r.yaml", receiver.url), max_attempts=3)
    d.step(T0)
    receiver.reply_next(429, {"Retry-After": "inf"}, n=10)
    now = T0 + timedelta(minutes=15)
    for _ in range(4):
        d.step(now)
        now += DAY + timedelta(minutes=1)  # the cap: a day
    (message,) = messages(store)
    assert (message.status, message.attempts) == ("dead", 3)
    assert len(attempts(store)) == 3


def test_backoff_is_capped_whatever_the_notifier_says(store: AlertStore) -> None:
    worker = DeliveryWorker(store, {}, rng=random.Random(3))
    for asked in (float("inf"), float("nan"), 3e11, 1e308, -5.0, None):
        seconds = worker.backoff(5000, asked)
        assert 0 < seconds <= MAX_RETRY_AFTER_S
    assert worker.backoff(1, 120.0) >= 120.0  # a sensible request is honoured


# --- replays of history: budget, quiet hours and grouping at the time of sending ------------

def history_routes(path: Path, url: str, *, budget: int = 8,
                   quiet: str | None = "19:00-07:30") -> Path:
    return routing_yaml(path, url, budget=budget, quiet=quiet)


def test_after_a_replay_of_history_old_alerts_become_history_not_messages(
        store: AlertStore, receiver: WebhookReceiver, tmp_path: Path) -> None:
    # 202 alerts about one rep's customers over the last 40 days, stored by a replay today
    now = datetime(2024, 3, 20, 10, 0, tzinfo=UTC)  # 10:00 in London, outside quiet hours
    start = (now - T0).total_seconds() / 60 - 40 * 24 * 60
    old = [alert(f"C{i}", start + i * 4.7 * 60) for i in range(202)]
    store.add(old)
    d = delivery(store, history_routes(tmp_path / "r.yaml", receiver.url))
    for hour in range(30):  # `sia deliver --follow` for a day and a bit
        d.step(now + timedelta(hours=hour))
    cutoff = now - 2 * DAY
    with Session(store.engine) as session:
        statuses = {r.alert_id: r.status for r in session.scalars(select(AlertRecord))}
        occurred = {r.alert_id: r.occurred_at for r in session.scalars(select(AlertRecord))}
    assert all(status == "history" for aid, status in statuses.items()
               if occurred[aid] < cutoff)
    recent = [aid for aid, at in occurred.items() if at >= cutoff]
    assert recent and all(statuses[aid] == "routed" for aid in recent)
    per_day: dict[str, int] = {}
    for m in messages(store):
        if m.kind in ("alert", "group") and m.status == "sent":
            day = m.sent_at.date().isoformat() if m.sent_at else ""
            per_day[day] = per_day.get(day, 0) + 1
    # before: 202 messages at once (each past day had a budget of its own)
    assert per_day and max(per_day.values()) <= 8
    # nothing sent in the recipient's quiet hours (London: GMT in March)
    for m in messages(store):
        if m.sent_at is not None and m.kind in ("alert", "group"):
            local = m.sent_at.time()
            assert local.replace(second=0) >= datetime(2024, 1, 1, 7, 30).time()
            assert local < datetime(2024, 1, 1, 19, 0).time()


def test_alerts_routed_in_quiet_hours_wait_for_the_morning_of_the_day_of_sending(
        store: AlertStore, receiver: WebhookReceiver, tmp_path: Path) -> None:
    # an alert about yesterday afternoon, routed tonight at 23:00: before, its event time
    # (15:00, outside quiet hours) decided, and it went out at once at 23:00
    store.add([alert("C1", 6 * 60)])  # 15:00 London on 4 March
    d = delivery(store, history_routes(tmp_path / "r.yaml", receiver.url))
    night = T0.replace(hour=23)
    assert d.step(night).sent == 0
    assert d.step(night.replace(day=5, hour=7, minute=29)).sent == 0
    assert d.step(night.replace(day=5, hour=7, minute=40)).sent == 1
    (m,) = messages(store)
    assert m.sent_at is not None and m.sent_at.hour == 7


def test_a_window_due_before_quiet_hours_but_planned_inside_them_waits(
        store: AlertStore, receiver: WebhookReceiver, tmp_path: Path) -> None:
    store.add([alert("C1", 9 * 60 + 40)])  # 18:40 London: the window closes at 18:50
    d = delivery(store, history_routes(tmp_path / "r.yaml", receiver.url))
    d.step(T0.replace(hour=18, minute=40))
    assert d.step(T0.replace(hour=20)).sent == 0  # the worker came back during quiet hours
    assert d.step(T0.replace(day=5, hour=7, minute=30)).sent == 1


def test_the_budget_counts_per_day_of_sending_not_per_day_of_the_events(
        store: AlertStore, receiver: WebhookReceiver, tmp_path: Path) -> None:
    # ten accounts' alerts from the last 36 hours, routed in one go: one budget of 3 today
    now = T0 + timedelta(hours=36)  # 21:00 on 5 March
    store.add([alert(f"C{i}", i * 3 * 60) for i in range(10)])
    d = delivery(store, history_routes(tmp_path / "r.yaml", receiver.url, budget=3, quiet=None))
    d.step(now)
    d.step(now + timedelta(minutes=15))
    sent = [m for m in messages(store) if m.kind in ("alert", "group") and m.status == "sent"]
    assert len(sent) == 3  # before: 3 for 4 March and 3 for 5 March, all sent now
    with Session(store.engine) as session:
        shed = session.scalars(select(AlertRoute).where(AlertRoute.disposition == "shed")).all()
    assert len(shed) == 7  # the rest goes to the digest, never silently


def test_grouping_window_opens_when_the_alerts_are_routed(
        store: AlertStore, receiver: WebhookReceiver, tmp_path: Path) -> None:
    # alerts about one account from the last day, routed now: one message, after the wait
    now = T0 + DAY
    store.add([alert("C1", 60 * h) for h in (1, 5, 9)])
    d = delivery(store, history_routes(tmp_path / "r.yaml", receiver.url, quiet=None))
    assert d.step(now).sent == 0  # before: sent at once (windows closed a day ago)
    assert d.step(now + timedelta(minutes=10)).sent == 1
    (body,) = [r.json() for r in receiver.received]
    assert body["kind"] == "group" and len(body["alerts"]) == 3


def test_a_snooze_made_today_holds_an_alert_about_yesterday(
        store: AlertStore, receiver: WebhookReceiver, tmp_path: Path) -> None:
    now = T0 + DAY
    snooze(store, scope="customer", target="C1", who="Rep R1", why="on holiday",
           until=now + 3 * DAY, now=now - timedelta(hours=1))
    store.add([alert("C1", 60)])  # yesterday 10:00: before the snooze was made
    d = delivery(store, history_routes(tmp_path / "r.yaml", receiver.url, quiet=None))
    d.step(now)
    d.step(now + timedelta(hours=1))
    assert receiver.received == []  # before: sent (the snooze was younger than the event)


def test_alerts_from_the_future_of_the_routing_clock_wait_until_then(
        store: AlertStore, receiver: WebhookReceiver, tmp_path: Path) -> None:
    store.add([alert("C1", 60)])
    d = delivery(store, history_routes(tmp_path / "r.yaml", receiver.url, quiet=None))
    assert d.dispatcher.route_pending(T0) == 0
    assert d.dispatcher.route_pending(T0 + timedelta(hours=1)) == 1


def test_the_history_cut_off_is_a_setting(
        store: AlertStore, receiver: WebhookReceiver, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sia.settings import get_settings

    monkeypatch.setenv("SIA_DELIVERY_MAX_AGE_DAYS", "10")
    get_settings.cache_clear()
    try:
        store.add([alert("C1", 0), alert("C2", 0)])
        d = delivery(store, history_routes(tmp_path / "r.yaml", receiver.url, quiet=None))
        assert d.dispatcher.max_age == timedelta(days=10)
        assert d.dispatcher.route_pending(T0 + 5 * DAY) == 2
    finally:
        get_settings.cache_clear()
    explicit = Delivery(store, catalog(), {}, routes=tmp_path / "r.yaml", max_age=DAY,
                        worker=DeliveryWorker(store, {}))
    assert explicit.dispatcher.max_age == DAY
    with pytest.raises(ValueError, match="max_age"):
        Delivery(store, catalog(), {}, routes=tmp_path / "r.yaml", max_age=timedelta(0),
                 worker=DeliveryWorker(store, {}))


# --- Slack request signatures --------------------------------------------------------------

@pytest.mark.parametrize("timestamp", ["nan", "NaN", "inf", "-inf", "1e9", " 1709280000",
                                       "-1709280000", "1709280000.5", "9" * 40])
def test_a_slack_timestamp_that_is_not_whole_seconds_is_refused(timestamp: str) -> None:
    from sia.feedback.slack_signature import sign, verify

    secret, body = b"slack-signing-secret-for-tests", b"payload=%7B%7D"
    signature = sign(secret, timestamp, body)  # even correctly signed
    # before: "nan" passed the freshness check (every comparison with NaN is false)
    assert verify(secret, timestamp, body, signature, now=1_709_280_000.0) is not None


def test_a_fresh_genuine_slack_request_still_passes() -> None:
    from sia.feedback.slack_signature import sign, verify

    secret, body, now = b"slack-signing-secret-for-tests", b"payload=%7B%7D", 1_709_280_000.0
    stamp = str(int(now) - 10)
    assert verify(secret, stamp, body, sign(secret, stamp, body), now=now) is None
    old = str(int(now) - 301)
    assert verify(secret, old, body, sign(secret, old, body), now=now) is not None
