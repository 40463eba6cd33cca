"""SIA on a real Kafka broker: `sia produce`, then real `sia worker` processes.

(1) one worker stores exactly the alerts the embedded partitioned replay computes from
the same events (and with one partition, exactly the plain embedded replay's: see
tests/engine/test_partitions.py); (2) two workers, one killed with SIGKILL mid-stream:
after the rebalance every expected alert exists once and every event was learned;
(3) poison messages go to the dead-letter topic with their reason, and the worker goes on;
(4) a worker handed offsets past its checkpoint seeks back; (5) a partition whose history
retention deleted starts from the compacted reference topics.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from sia.alerts.store import AlertStore
from sia.config import config_dir
from sia.detectors.config import load_detectors
from sia.engine.partitions import PartitionEngine, partition_for, replay_partitioned
from sia.events.models import Event
from sia.events.reader import read_events
from sia.policy import load_policy
from sia.transports import shared_config
from sia.transports.kafka.topics import Topics
from tests.transports import kafka_helpers as kh

DATASET = Path(__file__).parents[3] / "shared/datasets/online_retail/online_retail.csv.gz"
PARTITIONS = 4

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="session")
def retail_events(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Event]]:
    """The online retail replay as canonical events (imported once per session): the
    whole dataset when ../shared/datasets is next to the repository, else the sample of
    the same data bundled with SIA."""
    from sia.cli.demo import sample_path

    source = DATASET if DATASET.exists() else sample_path()
    out = tmp_path_factory.mktemp("retail") / "online_retail.jsonl.gz"
    done = kh.sia(["import", "online-retail", str(source), "-o", str(out)], env=_plain_env())
    assert done.returncode == 0, done.stderr
    events = [e for e in read_events(out) if not hasattr(e, "reason")]
    return out, events  # type: ignore[return-value]


@pytest.fixture(scope="session")
def expected_alerts(retail_events: tuple[Path, list[Event]]) -> dict[str, str]:
    """alert id -> detector, as the embedded partitioned replay computes them."""
    _, events = retail_events
    alerts = replay_partitioned(events, partitions=PARTITIONS, rep_partitions=1,
                                make_detectors=lambda: load_detectors(None),
                                policy_config=load_policy(None),
                                share_population=True)  # as workers do by default
    return {a.alert_id: a.finding.detector for a in alerts}


def _plain_env() -> dict[str, str]:
    return kh.plain_env()


def _stored(url: str) -> dict[str, str]:
    store = AlertStore(url)
    try:
        return {r.alert_id: r.detector for r in store.list(limit=1_000_000)}
    finally:
        store.close()


def _count(url: str) -> int:
    store = AlertStore(url)
    try:
        return store.count()
    finally:
        store.close()


@pytest.fixture()
def app_id(kafka_broker: str) -> Iterator[str]:
    """A new app id (topic prefix and consumer group); its topics are deleted after the
    test, whatever its outcome."""
    name = kh.new_app_id()
    yield name
    kh.delete_topics_of(kafka_broker.removeprefix("kafka://"), name)


@pytest.fixture()
def pg_schema(postgres_url: str) -> Any:
    """A PostgreSQL schema of its own, as a SQLAlchemy URL that uses it."""
    name = kh.new_app_id()
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {name}"))
    sep = "&" if "?" in postgres_url else "?"
    yield f"{postgres_url}{sep}options=-csearch_path%3D{name}"
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {name} CASCADE"))
    engine.dispose()


def _produce(path: Path, env: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    done = kh.sia(["produce", str(path), "--json", "--rejects", str(tmp_path / "rej.jsonl")],
                  env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def test_one_worker_stores_the_alerts_of_the_embedded_replay(
        kafka_broker: str, app_id: str, redis_client: Any, retail_events: tuple[Path, list[Event]],
        expected_alerts: dict[str, str], tmp_path: Path) -> None:
    path, events = retail_events
    db = f"sqlite:///{tmp_path / 'alerts.db'}"
    env = kh.worker_env(app_id, kafka_broker, db, redis_url=kh.redis_url_of(redis_client),
                        partitions=PARTITIONS)
    summary = _produce(path, env, tmp_path)
    assert summary["events"] == len(events) and summary["rejects"] == 0
    # the team's thresholds, published through Redis: the worker starts with them
    published = shared_config.publish(redis_client, app_id,
                                      config_dir() / "detectors.yaml",
                                      config_dir() / "policy.yaml")
    log = tmp_path / "worker.log"
    worker = kh.start_worker(env, log)
    try:
        kh.wait_for(lambda: _count(db) >= len(expected_alerts), timeout=600,
                    what=f"{len(expected_alerts)} alerts in the store", logs=[log])
        topics = Topics(app_id, PARTITIONS, 1)
        per_partition = kh.expected_messages(events, topics)
        kh.wait_for(lambda: kh.learned_per_partition(kafka_broker.removeprefix("kafka://"),
                                                     topics) == dict(per_partition),
                    timeout=120, what="checkpoints covering every event", logs=[log])
    finally:
        kh.stop(worker)
    stored = _stored(db)
    assert stored == expected_alerts
    assert len(set(expected_alerts.values())) >= 5  # most detectors speak on this data
    assert f"(version {published.version})" in log.read_text(errors="replace")


def test_killed_worker_loses_no_event_and_duplicates_no_alert(
        kafka_broker: str, app_id: str, retail_events: tuple[Path, list[Event]],
        expected_alerts: dict[str, str], pg_schema: str, tmp_path: Path) -> None:
    path, events = retail_events
    env = kh.worker_env(app_id, kafka_broker, pg_schema, redis_url="redis://127.0.0.1:6379/15",
                        partitions=PARTITIONS)
    AlertStore(pg_schema).close()  # migrate once, before two workers race to do it
    _produce(path, env, tmp_path)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    topics = Topics(app_id, PARTITIONS, 1)
    per_partition = kh.expected_messages(events, topics)
    bootstrap = kafka_broker.removeprefix("kafka://")
    first, second = kh.start_worker(env, logs[0]), kh.start_worker(env, logs[1])

    def progress() -> float:
        done = kh.committed(bootstrap, app_id, topics.events)
        return sum(done.values()) / sum(per_partition.values())

    try:
        # the stream is well under way (a fifth of it committed): kill one worker
        kh.wait_for(lambda: progress() >= 0.2, timeout=600, what="a fifth of the events",
                    logs=logs)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        survivor_log_at_kill = logs[1].stat().st_size
        assert progress() < 0.9, "the stream had nearly ended before the kill"
        kh.wait_for(lambda: _count(pg_schema) >= len(expected_alerts), timeout=900,
                    what="every expected alert after the rebalance", logs=logs)
        kh.wait_for(lambda: kh.learned_per_partition(kafka_broker.removeprefix("kafka://"),
                                                     topics) == dict(per_partition),
                    timeout=180, what="checkpoints covering every event", logs=logs)
    finally:
        kh.stop(first)
        kh.stop(second)
    stored = _stored(pg_schema)
    assert stored == expected_alerts  # each once: the alert id is the primary key
    with logs[1].open("rb") as handle:
        handle.seek(survivor_log_at_kill)
        after_kill = handle.read().decode(errors="replace")
    # the survivor took the dead worker's partitions over from their checkpoints
    assert "events partition" in after_kill and "restored" in after_kill


def test_poison_messages_go_to_the_dead_letter_topic(kafka_broker: str, app_id: str,
                                                      tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'alerts.db'}"
    env = kh.worker_env(app_id, kafka_broker, db, redis_url=None, partitions=2)
    good = [{"type": "order", "event_id": f"o{i}", "order_id": f"o{i}", "customer_id": "C1",
             "occurred_at": f"2024-01-{i + 1:02d}T10:00:00+00:00",
             "lines": [{"product_id": "P1", "quantity": 2, "unit_price": 5.0}]}
            for i in range(5)]
    bootstrap = kafka_broker.removeprefix("kafka://")
    topics = Topics(app_id, 2, 1)
    from sia.transports.kafka.topics import create_topics

    asyncio.run(create_topics(bootstrap, topics))
    poison = [b"\xff\xfe not text", b"{not json", json.dumps(
        {"type": "order", "event_id": "bad1", "order_id": "bad1", "customer_id": "C1",
         "occurred_at": "2024-01-03T10:00:00+00:00", "lines": []}).encode()]
    values = [json.dumps(good[0]).encode(), json.dumps(good[1]).encode(), *poison,
              *(json.dumps(g).encode() for g in good[2:])]
    asyncio.run(_send(bootstrap, topics.events, values))
    log = tmp_path / "worker.log"
    worker = kh.start_worker(env, log)
    try:
        kh.wait_for(lambda: len(kh.read_topic(bootstrap, topics.dead_letter)) >= 3,
                    timeout=180, what="three dead letters", logs=[log])
        kh.wait_for(lambda: sum(kh.learned_per_partition(bootstrap, topics).values()) == 5,
                    timeout=120, what="the five good orders learned after the poison",
                    logs=[log])
        assert worker.poll() is None, "the worker stopped"
    finally:
        kh.stop(worker)
    letters = [json.loads(r.value) for r in kh.read_topic(bootstrap, topics.dead_letter)]
    reasons = {letter["offset"]: letter["reason"] for letter in letters}
    assert len(letters) == 3
    assert any("not UTF-8" in r for r in reasons.values())
    assert any("not JSON" in r for r in reasons.values())
    bad = next(letter for letter in letters if letter["event_id"] == "bad1")
    assert "lines" in bad["reason"] and bad["topic"] == topics.events
    assert bad["value"].startswith("{")  # the message itself is kept, as text


async def _send(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"C1", partition=0)
    finally:
        await producer.stop()


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


async def _forget_history(bootstrap: str, topic: str, partitions: int) -> None:
    """What retention does: delete every record the events topic holds so far."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await consumer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_records({tp: RecordsToDelete(offset) for tp, offset in ends.items()})
    finally:
        await admin.close()


def _small(kafka_broker: str, app_id: str, tmp_path: Path,
           partitions: int) -> tuple[dict[str, str], str, Topics]:
    """A deployment of its own for a small test: worker environment (SQLite store, no
    Redis), bootstrap servers and topics."""
    env = kh.worker_env(app_id, kafka_broker, f"sqlite:///{tmp_path / 'alerts.db'}",
                        redis_url=None, partitions=partitions)
    return env, kafka_broker.removeprefix("kafka://"), Topics(app_id, partitions, 1)


def test_a_partition_whose_history_is_gone_starts_from_the_reference_topics(
        kafka_broker: str, app_id: str, tmp_path: Path) -> None:
    env, bootstrap, topics = _small(kafka_broker, app_id, tmp_path, 2)
    at = "2024-01-0{}T10:00:00+00:00".format
    old = [{"type": "product", "event_id": "p1", "product_id": "P1", "name": "Mug",
            "occurred_at": at(1)},
           {"type": "product", "event_id": "p2", "product_id": "P2", "name": "Tray",
            "occurred_at": at(1), "discontinued": True},
           {"type": "rep", "event_id": "r1", "rep_id": "R1", "team": "north",
            "occurred_at": at(1)},
           {"type": "customer", "event_id": "c1", "customer_id": "C1", "owner_rep_id": "R1",
            "occurred_at": at(2)},
           {"type": "order", "event_id": "o1", "order_id": "o1", "customer_id": "C1",
            "occurred_at": at(3), "lines": [{"product_id": "P1", "quantity": 1,
                                             "unit_price": 4.0}]}]
    _produce(_jsonl(tmp_path / "old.jsonl", old), env, tmp_path)
    asyncio.run(_forget_history(bootstrap, topics.events, 2))
    new = [{"type": "order", "event_id": "o2", "order_id": "o2", "customer_id": "C1",
            "occurred_at": at(5), "lines": [{"product_id": "P2", "quantity": 3,
                                             "unit_price": 6.0}]}]
    _produce(_jsonl(tmp_path / "new.jsonl", new), env, tmp_path)
    partition = partition_for("C1", 2)
    log = tmp_path / "worker.log"
    worker = kh.start_worker(env, log)
    try:
        kh.wait_for(lambda: partition in kh.learned_per_partition(bootstrap, topics),
                    timeout=180, what="a checkpoint of C1's partition", logs=[log])
    finally:
        kh.stop(worker)
    blob = kh.read_topic(bootstrap, topics.changelog("engine-state"))[-1].value
    part = PartitionEngine.restore(blob, detectors=kh.customer_detectors(),
                                   policy_config=load_policy(None))
    catalog = part.engine.catalog
    assert set(catalog.products) == {"P1", "P2"} and catalog.products["P2"].discontinued
    assert set(catalog.reps) == {"R1"} and catalog.customers["C1"].owner_rep_id == "R1"
    assert part.engine.observed == 5  # four reference records, then order o2 (o1 is gone)
    assert "seeded with 4 reference records" in log.read_text(errors="replace")


async def _commit(bootstrap: str, group: str, topic: str, partition: int, offset: int) -> None:
    """What Faust can do at a rebalance: commit past messages no agent learned."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.commit({tp: offset})
    finally:
        await consumer.stop()


@pytest.mark.parametrize(("total", "found"), [
    # the group committed 15 offsets past the checkpoint, and later messages arrive:
    # the first of them reveals the gap (45, or 46 when Faust drops the message at the
    # committed offset as read, which it does in some runs)
    (60, r"offset 4[56] arrived, but the state covers offsets up to 29 only: seeking "
         r"back to 30"),
    # the commit is at the partition's end: no later message arrives to reveal the
    # gap, so the worker's clock finds it (the consumer's position past the state,
    # unmoved between two looks)
    (45, r"consumed up to offset 44, but the state covers offsets up to 29 only, and "
         r"neither moved since the last look: seeking back to 30"),
], ids=["later-messages", "at-the-end"])
def test_a_worker_handed_offsets_past_its_checkpoint_seeks_back(
        kafka_broker: str, app_id: str, tmp_path: Path, total: int, found: str) -> None:
    env, bootstrap, topics = _small(kafka_broker, app_id, tmp_path, 1)
    orders = [{"type": "order", "event_id": f"o{i}", "order_id": f"o{i}",
               "customer_id": f"C{i % 7}", "occurred_at": f"2024-{1 + i // 28:02d}-"
               f"{1 + i % 28:02d}T10:00:00+00:00",
               "lines": [{"product_id": f"P{i % 5}", "quantity": 2, "unit_price": 5.0}]}
              for i in range(total)]
    _produce(_jsonl(tmp_path / "first.jsonl", orders[:30]), env, tmp_path)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    worker = kh.start_worker(env, logs[0])
    try:
        kh.wait_for(lambda: kh.learned_per_partition(bootstrap, topics) == {0: 30},
                    timeout=180, what="the first 30 orders checkpointed", logs=logs[:1])
    finally:
        kh.stop(worker)
    _produce(_jsonl(tmp_path / "second.jsonl", orders[30:]), env, tmp_path)
    asyncio.run(_commit(bootstrap, app_id, topics.events, 0, 45))  # 30 to 44 never learned
    worker = kh.start_worker(env, logs[1])
    try:
        kh.wait_for(lambda: kh.learned_per_partition(bootstrap, topics) == {0: total},
                    timeout=240, what=f"all {total} orders checkpointed", logs=logs[1:])
    finally:
        kh.stop(worker)
    assert re.search(found, logs[1].read_text(errors="replace")), found


def test_a_new_partition_handed_a_later_offset_learns_from_the_earliest(
        kafka_broker: str, app_id: str, tmp_path: Path) -> None:
    # no checkpoint yet, and the group committed past messages no agent learned: not
    # retention (the topic still holds them), so the worker learns them, not seeds
    env, bootstrap, topics = _small(kafka_broker, app_id, tmp_path, 1)
    orders = [{"type": "order", "event_id": f"o{i}", "order_id": f"o{i}", "customer_id": "C1",
               "occurred_at": f"2024-01-{1 + i:02d}T10:00:00+00:00",
               "lines": [{"product_id": "P1", "quantity": 2, "unit_price": 5.0}]}
              for i in range(20)]
    _produce(_jsonl(tmp_path / "orders.jsonl", orders), env, tmp_path)
    asyncio.run(_commit(bootstrap, app_id, topics.events, 0, 12))
    log = tmp_path / "worker.log"
    worker = kh.start_worker(env, log)
    try:
        kh.wait_for(lambda: kh.learned_per_partition(bootstrap, topics) == {0: 20},
                    timeout=180, what="all 20 orders checkpointed", logs=[log])
    finally:
        kh.stop(worker)
    text = log.read_text(errors="replace")
    assert "handed offset 12 although the topic holds offsets from 0" in text
    assert "seeded with" not in text


def test_a_live_partition_no_event_reaches_does_not_hold_the_others_back(
        kafka_broker: str, app_id: str, tmp_path: Path) -> None:
    # wall clock and shared population models, two customer partitions; every event is
    # one customer's, in partition 0, so partition 1 has nothing to read, ever. Before
    # partition 0 ticks a day, partition 1 must say it is complete through it: partition
    # 0's population messages give partition 1 an engine, and the worker's timer starts
    # its clock from the wall clock
    env, bootstrap, topics = _small(kafka_broker, app_id, tmp_path, 2)
    env["SIA_KAFKA_CLOCK"] = "wall"
    customer = next(c for c in (f"C{i}" for i in range(100)) if partition_for(c, 2) == 0)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    orders = [{"type": "order", "event_id": f"o{i}", "order_id": f"o{i}",
               "customer_id": customer,
               "occurred_at": (today - timedelta(days=2 - i, hours=-10)).isoformat(),
               "lines": [{"product_id": "P1", "quantity": 2, "unit_price": 5.0}]}
              for i in range(2)]  # two days ago and yesterday, 10:00
    _produce(_jsonl(tmp_path / "orders.jsonl", orders), env, tmp_path)
    log = tmp_path / "worker.log"
    worker = kh.start_worker(env, log)

    def settled() -> bool:
        found = kh.checkpoints(bootstrap, topics)
        return ({p: (part.engine.observed, len(part.held), part.waiting)
                 for p, part in found.items()} == {0: (2, 0, False), 1: (0, 0, False)})

    try:
        kh.wait_for(settled, timeout=240, logs=[log],
                    what="partition 0 learned both orders, holding none; partition 1 ticking")
    finally:
        kh.stop(worker)
