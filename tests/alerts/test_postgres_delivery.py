"""Delivery from a PostgreSQL store to a real webhook receiver: the loop works as on SQLite,
and workers sharing the store never send a message twice."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from delivery.conftest import T0, alert, catalog, routing_yaml  # type: ignore[import-not-found]
from notifiers.servers import WEBHOOK_SECRET, WebhookReceiver  # type: ignore[import-not-found]
from sqlalchemy import select
from sqlalchemy.orm import Session

from sia.alerts.store import AlertStore
from sia.delivery.service import Delivery
from sia.delivery.tables import DeliveryAttempt, OutboxMessage
from sia.delivery.worker import DeliveryStats, DeliveryWorker
from sia.notifiers.base import Message, Notifier
from sia.notifiers.registry import build_notifier

CUSTOMERS = [f"C{i}" for i in range(1, 41)]


class SlowWebhook(Notifier):
    """The real webhook notifier, taking a little longer per send, as a remote one does."""

    channel = "webhook"

    def __init__(self) -> None:
        self.inner = build_notifier("webhook", {"secret": WEBHOOK_SECRET, "timeout": 5})

    def send(self, message: Message) -> str:
        time.sleep(0.02)
        return str(self.inner.send(message))

    def close(self) -> None:
        self.inner.close()


@pytest.fixture()
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


@pytest.fixture()
def store(pg_url: str) -> Iterator[AlertStore]:
    s = AlertStore(pg_url)
    yield s
    s.close()


def planned(store: AlertStore, routes: Path) -> int:
    """One alert about each of 40 accounts, routed and planned into the outbox."""
    store.add([alert(c, i % 5) for i, c in enumerate(CUSTOMERS)])
    delivery = Delivery(store, catalog(), {}, routes=routes,
                        worker=DeliveryWorker(store, {}))
    delivery.dispatcher.route_pending(T0 + timedelta(minutes=5))  # routed as they come
    delivery.dispatcher.plan(T0 + timedelta(minutes=20))
    with Session(store.engine) as session:
        return len(session.scalars(select(OutboxMessage.message_id)).all())


def test_the_delivery_loop_runs_on_postgres(
        store: AlertStore, receiver: WebhookReceiver, tmp_path: Path) -> None:
    store.add([alert("C1", 0), alert("C1", 4), alert("C2", 5)])
    webhook = build_notifier("webhook", {"secret": WEBHOOK_SECRET, "timeout": 2})
    d = Delivery(store, catalog(), {"webhook": webhook},
                 routes=routing_yaml(tmp_path / "r.yaml", receiver.url))
    receiver.reply_next(503)  # the first send fails and is retried later
    for minutes in (0, 5):  # routed as they come: windows open at the time of routing
        d.step(T0 + timedelta(minutes=minutes))
    assert d.step(T0 + timedelta(minutes=9)).sent == 0  # group windows still open
    first = d.step(T0 + timedelta(minutes=16))
    assert (first.sent, first.retried) == (1, 1)
    later = d.step(T0 + timedelta(hours=2))
    assert later.sent == 1
    bodies = sorted((r.json() for r in receiver.received if r.status == 200),
                    key=lambda b: len(b["alerts"]))
    assert [len(b["alerts"]) for b in bodies] == [1, 2]
    assert all(r.verified for r in receiver.received)


def test_two_workers_on_one_store_never_send_a_message_twice(
        pg_url: str, store: AlertStore, receiver: WebhookReceiver, tmp_path: Path) -> None:
    total = planned(store, routing_yaml(tmp_path / "r.yaml", receiver.url, budget=1000))
    assert total == len(CUSTOMERS)
    start = threading.Barrier(2)
    stats: list[DeliveryStats] = []

    def work() -> None:
        own = AlertStore(pg_url)  # a worker process of its own, in effect
        worker = DeliveryWorker(own, {"webhook": SlowWebhook()})
        start.wait()
        stats.append(worker.run_once(T0 + timedelta(minutes=20)))
        own.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keys = Counter(r.headers["idempotency-key"] for r in receiver.received)
    assert len(keys) == total and set(keys.values()) == {1}  # every message, once
    assert sorted(s.sent > 0 for s in stats) == [True, True]  # both did a share
    assert sum(s.sent for s in stats) == total
    with Session(store.engine) as session:
        assert len(session.scalars(select(DeliveryAttempt)).all()) == total
        assert set(session.scalars(select(OutboxMessage.status))) == {"sent"}


def test_a_message_another_worker_holds_is_skipped_until_it_lets_go(
        store: AlertStore, receiver: WebhookReceiver, tmp_path: Path) -> None:
    total = planned(store, routing_yaml(tmp_path / "r.yaml", receiver.url, budget=1000))
    worker = DeliveryWorker(store, {"webhook": SlowWebhook()})
    now = T0 + timedelta(minutes=20)
    with Session(store.engine) as other, other.begin():  # a worker busy sending one
        held = other.scalars(select(OutboxMessage.message_id).order_by(
            OutboxMessage.message_id).limit(1).with_for_update()).one()
        assert worker.run_once(now).sent == total - 1
    assert held not in {r.headers["idempotency-key"] for r in receiver.received}
    assert worker.run_once(now).sent == 1  # let go without sending: the next pass sends it
    assert receiver.received[-1].headers["idempotency-key"] == held
