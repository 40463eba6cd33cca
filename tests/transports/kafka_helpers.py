"""Running real `sia worker` processes against the test broker, and reading what they
left in Kafka (checkpoints, dead letters) and in the store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sia.detectors.config import load_detectors
from sia.engine.partitions import PartitionEngine
from sia.policy import load_policy
from sia.transports.kafka.producer import messages_for
from sia.transports.kafka.topics import Topics


def new_app_id() -> str:
    """Topics and consumer group of one test, never shared with another run."""
    return f"t{uuid.uuid4().hex[:10]}"


async def _delete_topics_of(bootstrap: str, app_id: str) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(f"{app_id}-")]
        if names:
            await admin.delete_topics(names)
        return names
    finally:
        await admin.close()


def delete_topics_of(bootstrap: str, app_id: str) -> list[str]:
    """Delete every topic of one test's app (Faust's changelogs included), so that runs
    do not pile partitions up on the test broker; the names deleted."""
    return asyncio.run(_delete_topics_of(bootstrap, app_id))


def worker_env(app_id: str, broker: str, database_url: str, *, redis_url: str | None,
               partitions: int = 4) -> dict[str, str]:
    """The environment of a worker process."""
    env = plain_env()
    env.update({"SIA_KAFKA_APP_ID": app_id, "SIA_KAFKA_BROKER": broker,
                "SIA_KAFKA_PARTITIONS": str(partitions), "SIA_KAFKA_CLOCK": "event",
                "SIA_DATABASE_URL": database_url, "SIA_KAFKA_BATCH": "1000"})
    if redis_url:
        env["SIA_REDIS_URL"] = redis_url
    return env


def plain_env() -> dict[str, str]:
    """This environment without SIA settings, but for where Faust keeps its data folder
    (tests/conftest.py keeps it out of the checkout)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("SIA_") or k == "SIA_KAFKA_DATA_DIR"}


def redis_url_of(client: Any) -> str:
    """The URL of the database a redis client talks to (workers use the same one)."""
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


def sia(args: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a sia command to completion."""
    return subprocess.run([sys.executable, "-m", "sia", *args], env=env, text=True,
                          capture_output=True, timeout=300, check=False, **kwargs)


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A `sia worker` process, its output in `log`."""
    handle = log.open("wb")
    return subprocess.Popen([sys.executable, "-m", "sia", "worker"], env=env,
                            stdout=handle, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a worker if it still runs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str,
             logs: list[Path] = ()) -> None:  # type: ignore[assignment]
    """Poll until `condition` holds; on timeout fail with the workers' log tails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1.0)
    tails = "\n".join(f"--- {p}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-30:])
                      for p in logs if p.exists())
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")


def expected_messages(events: list[Any], topics: Topics) -> Counter[int]:
    """Messages each partition of the events topic receives from `sia produce`."""
    per: Counter[int] = Counter()
    for event in events:
        for topic, _key, _value, partition in messages_for(event, topics):
            if topic == topics.events and partition is not None:
                per[partition] += 1
    return per


async def _read_all(bootstrap: str, topic: str) -> list[Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_bytes=64 * 1024 * 1024,
                                max_partition_fetch_bytes=64 * 1024 * 1024)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p)
                 for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not parts:
            await consumer._client.force_metadata_update()
            parts = [TopicPartition(topic, p)
                     for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        records = []
        async def behind() -> bool:
            for tp in parts:
                if await consumer.position(tp) < ends[tp]:
                    return True
            return False

        while await behind():
            batch = await consumer.getmany(timeout_ms=1000)
            for items in batch.values():
                records.extend(items)
        return records
    finally:
        await consumer.stop()


async def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items()
            if tp.topic == topic and meta.offset >= 0}


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The consumer group's committed offset of each partition of `topic`."""
    return asyncio.run(_committed(bootstrap, group, topic))


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of a topic, from the beginning to its current end."""
    return asyncio.run(_read_all(bootstrap, topic))


def customer_detectors() -> list[Any]:
    """The shipped customer-level detectors (what `engine-state` checkpoints hold)."""
    return [d for d in load_detectors(None) if d.keyed_by == "customer"]


def checkpoints(bootstrap: str, topics: Topics) -> dict[int, PartitionEngine]:
    """Each customer partition's last checkpoint, restored."""
    last: dict[int, bytes] = {}
    for record in read_topic(bootstrap, topics.changelog("engine-state")):
        last[record.partition] = record.value
    detectors = customer_detectors()
    return {partition: PartitionEngine.restore(blob, detectors=detectors,
                                               policy_config=load_policy(None))
            for partition, blob in last.items()}


def learned_per_partition(bootstrap: str, topics: Topics) -> dict[int, int]:
    """Distinct events each partition's last checkpoint has learned or holds (until
    every partition is complete through a boundary; repeats, such as events processed
    again after a crash, are recognised and not counted)."""
    return {partition: part.engine.observed + len(part.held)
            for partition, part in checkpoints(bootstrap, topics).items()}
