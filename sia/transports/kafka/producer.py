"""`sia produce`: publish a file of events to Kafka the way the workers expect them.

A customer's records go to its partition of the events topic (murmur2 of the customer
id, Kafka's default); product and rep records go to every partition (every partition's
detectors learn from the catalogue), and every reference record also goes to its
compacted topic. Invalid records are not sent: they are kept with their reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sia.engine.partitions import broadcast, partition_for
from sia.events.models import Customer, Event, Product, Rep
from sia.events.reader import Reject, RejectSink
from sia.transports.kafka.codec import encode_event
from sia.transports.kafka.topics import Topics


@dataclass
class Produced:
    """What a produce run sent and kept back."""

    events: int = 0
    messages: int = 0
    rejects: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)


def messages_for(event: Event, topics: Topics) -> list[tuple[str, bytes, bytes, int | None]]:
    """(topic, key, value, partition) of every message one event becomes."""
    value = encode_event(event)
    out: list[tuple[str, bytes, bytes, int | None]] = []
    if isinstance(event, Customer | Product | Rep):
        kind = {Customer: "customer", Product: "product", Rep: "rep"}[type(event)]
        ref_key = {Customer: lambda e: e.customer_id, Product: lambda e: e.product_id,
                   Rep: lambda e: e.rep_id}[type(event)](event)
        out.append((topics.reference(kind), ref_key.encode(), value, None))
    if broadcast(event):
        for p in range(topics.partitions):
            out.append((topics.events, event.event_id.encode(), value, p))
    else:
        customer = getattr(event, "customer_id", None) or ""
        out.append((topics.events, customer.encode(), value,
                    partition_for(customer, topics.partitions)))
    return out


async def produce(records: Iterable[Event | Reject], *, bootstrap: str, topics: Topics,
                  sink: RejectSink, options: dict[str, Any] | None = None) -> Produced:
    """Send every valid record; keep the invalid ones in `sink`. `options`: TLS and SASL
    (default: from the settings)."""
    from aiokafka import AIOKafkaProducer

    from sia.transports.kafka.security import client_options

    summary = Produced()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all",
                                max_batch_size=512 * 1024, compression_type=None,
                                **(client_options() if options is None else options))
    await producer.start()
    pending = []
    try:
        for record in records:
            if isinstance(record, Reject):
                summary.rejects += 1
                sink.add(record)
                continue
            summary.events += 1
            for topic, key, value, partition in messages_for(record, topics):
                pending.append(await producer.send(topic, value, key=key, partition=partition))
                summary.messages += 1
                summary.by_topic[topic] = summary.by_topic.get(topic, 0) + 1
            if len(pending) >= 10_000:
                await _settle(pending)
        await producer.flush()
        await _settle(pending)
    finally:
        await producer.stop()
    return summary


async def _settle(pending: list[object]) -> None:
    """Wait for sent messages; raise the first delivery error."""

    for fut in pending:
        await fut  # type: ignore[misc]
    pending.clear()
