"""The compacted reference topics, read when a partition starts without its history.

A partition's engine learns reference data (products, reps, customers) from the events
topic, in stream order, so that every run computes the same thing. The events topic has
a retention, though: once old events are gone, an engine that starts from scratch (no
checkpoint) would never see the products and customers defined before the oldest event
left. The compacted topics keep the latest record of each, so such an engine is seeded
from them first: every product and rep, and the customers of its own partition.

Faust's GlobalTable would hold these in every worker, but its own documentation warns
that with several app instances it can be stuck in an infinite recovery loop; a plain
read of the compacted topics when needed is simpler and has no such failure.
"""

from __future__ import annotations

import logging
from typing import Any

from sia.events.models import Event
from sia.transports.kafka import codec
from sia.transports.kafka.topics import Topics

log = logging.getLogger("sia.worker")


async def read_reference(bootstrap: str, topics: Topics, *, customers_partition: int | None,
                         options: dict[str, Any] | None = None) -> list[Event]:
    """The latest record of every product and rep, and of the customers in
    `customers_partition` (none when None), oldest first."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from sia.transports.kafka.security import client_options

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                **(client_options() if options is None else options))
    await consumer.start()
    try:
        declared = topics.declared()
        wanted = [TopicPartition(topics.reference(kind), p) for kind in ("product", "rep")
                  for p in range(declared[topics.reference(kind)][0])]
        if customers_partition is not None:
            wanted.append(TopicPartition(topics.reference("customer"), customers_partition))
        consumer.assign(wanted)
        await consumer.seek_to_beginning(*wanted)
        ends = await consumer.end_offsets(wanted)
        latest: dict[tuple[str, bytes | None], bytes | None] = {}
        while any([await consumer.position(tp) < ends[tp] for tp in wanted]):
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for record in records:
                    latest[(tp.topic, record.key)] = record.value
    finally:
        await consumer.stop()
    events: list[Event] = []
    for (topic, key), value in latest.items():
        if value is None:  # a tombstone: the record was deleted
            continue
        try:
            events.append(codec.decode_event(value))
        except codec.Undecodable as exc:
            log.warning("reference record %s/%r skipped: %s", topic, key, exc)
    return sorted(events, key=lambda e: e.occurred_at)
