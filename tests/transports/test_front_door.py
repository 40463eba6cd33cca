"""`sia serve --kafka`: the same front door in front of a Kafka deployment. Accepted
events reach the events topic (keyed by customer) before the answer; repeats are
duplicates and are not sent again; a worker learns them and the front door reads its
alerts; when Kafka cannot take events, nothing is recorded and the sender is told."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api.conftest import server_settings, serving  # type: ignore[import-not-found]

from sia.alerts.store import AlertStore
from sia.cli.demo import DATASETS, load
from sia.detectors.config import load_detectors
from sia.engine.partitions import replay_partitioned
from sia.events.models import Event
from sia.policy import load_policy
from sia.transports.kafka.receiver import kafka_receiver
from sia.transports.kafka.topics import Topics

from . import kafka_helpers as kh

pytestmark = pytest.mark.kafka
PARTITIONS = 2


@pytest.fixture(scope="module")
def retail() -> list[Event]:
    return load(DATASETS[0])[0]


@pytest.fixture()
def app_id(kafka_broker: str) -> Iterator[str]:
    name = kh.new_app_id()
    yield name
    kh.delete_topics_of(kafka_broker.removeprefix("kafka://"), name)


def post_all(url: str, key: str, events: list[dict[str, Any]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    with httpx.Client(base_url=url, timeout=60,
                      headers={"Authorization": f"Bearer {key}"}) as client:
        for i in range(0, len(events), 500):
            response = client.post("/v1/events", json={"events": events[i:i + 500]})
            assert response.status_code == 200, response.text
            counts.update(r["status"] for r in response.json()["results"])
    return counts


def test_the_front_door_hands_events_to_kafka_and_reads_the_workers_alerts(
        kafka_broker: str, app_id: str, retail: list[Event], tmp_path: Path) -> None:
    bootstrap = kafka_broker.removeprefix("kafka://")
    db = f"sqlite:///{tmp_path / 'alerts.db'}"
    settings = server_settings(kafka_app_id=app_id, kafka_partitions=PARTITIONS,
                               database_url=db)
    events = [e.model_dump(mode="json") for e in retail]
    with serving(tmp_path / "front", settings,
                 receiver=kafka_receiver(bootstrap, settings)) as front:
        assert front.runtime.mode == "kafka" and front.runtime.engine is None
        assert post_all(front.url, front.keys["crm"], events) == {"accepted": len(events)}
        topics = Topics(app_id, PARTITIONS, 1)
        sent = Counter(m.partition for m in kh.read_topic(bootstrap, topics.events))
        assert sent == kh.expected_messages(retail, topics)  # keyed as `sia produce` does
        assert post_all(front.url, front.keys["crm"], events[:1000]) == {"duplicate": 1000}
        assert Counter(m.partition for m in kh.read_topic(bootstrap, topics.events)) == sent
        expected = {a.alert_id for a in replay_partitioned(
            retail, partitions=PARTITIONS, rep_partitions=1,
            make_detectors=lambda: load_detectors(None), policy_config=load_policy(None),
            share_population=True)}
        env = kh.worker_env(app_id, kafka_broker, db, redis_url=None, partitions=PARTITIONS)
        log = tmp_path / "worker.log"
        worker = kh.start_worker(env, log)
        try:
            def stored() -> int:
                store = AlertStore(db)
                try:
                    return store.count()
                finally:
                    store.close()

            kh.wait_for(lambda: stored() >= len(expected), timeout=300,
                        what=f"{len(expected)} alerts from the worker", logs=[log])
        finally:
            kh.stop(worker)
        with front.client("admin") as admin:
            ids: set[str] = set()
            cursor = None
            while True:
                page = admin.get("/v1/alerts", params={"limit": 500, **(
                    {"cursor": cursor} if cursor else {})}).json()
                ids |= {a["alert_id"] for a in page["items"]}
                if (cursor := page["next_cursor"]) is None:
                    break
        assert ids == expected


def test_when_kafka_cannot_take_events_nothing_is_recorded(
        kafka_broker: str, app_id: str, retail: list[Event], tmp_path: Path) -> None:
    bootstrap = kafka_broker.removeprefix("kafka://")
    settings = server_settings(kafka_app_id=app_id, kafka_partitions=PARTITIONS)
    with serving(tmp_path / "front", settings,
                 receiver=kafka_receiver(bootstrap, settings)) as front:
        front.runtime.receiver.publisher.close()  # type: ignore[attr-defined]
        batch = [e.model_dump(mode="json") for e in retail[:10]]
        with front.client("crm") as crm:
            response = crm.post("/v1/events", json={"events": batch})
        assert response.status_code == 503, response.text
        assert "nothing was recorded" in response.json()["detail"]
        assert response.headers["retry-after"]
        assert front.runtime.journal.count() == 0
        front.runtime.receiver.close = lambda: None  # type: ignore[method-assign]


def test_serve_refuses_to_start_in_front_of_a_broker_it_cannot_reach(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "from sia.cli import app; app()", "serve",
                           "--data-dir", str(tmp_path / "d"), "--kafka", "127.0.0.1:1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cannot reach Kafka at 127.0.0.1:1" in done.stderr
