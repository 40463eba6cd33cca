"""Population models shared by customer partitions, over the population topic.

The protocol is `sia.engine.population`; this is its transport. After each batch, each
customer partition a worker touched sends its new updates and how far it is complete to
every other customer partition's share of the population topic (P partitions, so each
one is owned with its events partition). The `share-population` agent receives them,
and each partition learns what that releases of the events it holds. Sends are awaited
before the checkpoint that takes the updates out of the partition's outbox: an update
is never lost to a crash, and one sent twice is dropped by its sequence number.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sia.transports.kafka import codec

if TYPE_CHECKING:
    from sia.events.models import Event
    from sia.transports.kafka.app import SiaApp

log = logging.getLogger("sia.worker")
# updates per message: cross-sell and up-sell updates carry an order's lines (about
# 0.5 KB each on online retail), so a message stays well under the topic's limit
CHUNK = 500


def _outgoing(sia: SiaApp, touched: Iterable[int]) -> list[tuple[int, bytes]]:
    """(partition, message) for each touched partition with something new to tell, in
    messages of at most `CHUNK` updates. Only the last says how complete the partition
    is: a receiver must not apply a boundary before it has every update up to it."""
    out = []
    for p in sorted(touched):
        part = sia.customers.engines.get(p)
        exchange = part.population if part is not None else None
        if exchange is None:
            continue
        items, complete = exchange.take_outgoing(), part.complete()  # type: ignore[union-attr]
        if not items and complete == exchange.sent_complete:
            continue
        exchange.sent_complete = complete
        chunks = [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)] or [[]]
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            out.append((p, codec.encode_shared(p, complete if last else None, chunk)))
    return out


async def send_updates(sia: SiaApp, touched: Iterable[int]) -> None:
    """Send the touched partitions' updates to every other partition, and wait until
    Kafka has them (the checkpoint that follows no longer holds them)."""
    topic = sia.population_topic
    if topic is None:
        return
    pending = []
    for p, value in _outgoing(sia, touched):
        for q in range(sia.topics.partitions):
            if q != p:
                pending.append(await topic.send(key=str(p).encode(), value=value,
                                                partition=q))
    for delivered in pending:
        await delivered


def send_updates_soon(sia: SiaApp, touched: Iterable[int]) -> None:
    """The same without waiting for delivery (the in-process benchmark)."""
    topic = sia.population_topic
    if topic is None:
        return
    for p, value in _outgoing(sia, touched):
        for q in range(sia.topics.partitions):
            if q != p:
                topic.send_soon(key=str(p).encode(), value=value, partition=q)


def receive_updates(sia: SiaApp, events: Iterable[Any]) -> set[int]:
    """Take a batch of the population topic into each partition's exchange, then learn
    what it releases; the partitions touched. Messages already received (by offset)
    are skipped, and a gap in offsets seeks back, as for events: from offset 0 for an
    exchange that has received nothing yet."""
    touched: set[int] = set()
    for event in events:
        message = event.message
        part = sia.customers.engine(message.partition)
        exchange = part.population
        if exchange is None:
            continue  # sharing was turned off
        if message.offset <= exchange.offset:
            sia.counts["repeats"] += 1
            continue
        # an exchange that has received nothing starts at the topic's first offset,
        # never where the group's commit says: a message committed but not in the
        # partition's checkpoint (this agent does not checkpoint) is read again
        unreadable = sia.counts["unreadable_offsets"]
        if not sia.gaps.follows(message, exchange.offset):
            continue
        if sia.counts["unreadable_offsets"] > unreadable:
            exchange.updates_lost()  # retention deleted them: carry on without
        exchange.offset = message.offset
        touched.add(message.partition)
        lost = exchange.lost
        try:
            shared = codec.decode_shared(event.value)
            exchange.receive(shared.source, shared.updates, shared.complete)
        except (codec.Undecodable, ValueError) as exc:
            sia.reject(message, f"invalid population updates: {exc}")
        if exchange.lost > lost:
            log.error("events partition %d never received %d population updates of "
                      "partition %d (their messages are gone): its models lack them",
                      message.partition, exchange.lost - lost, shared.source)
    for p in sorted(touched):
        part = sia.customers.engines[p]

        def failed(offset: int, event: Event, exc: Exception, p: int = p) -> None:
            # a detector's bug must not stop the stream, nor cost more than this event
            log.error("learning held event %s of events partition %d failed",
                      event.event_id, p, exc_info=exc)
            sia.reject_learned(p, offset, event,
                               f"processing failed: {type(exc).__name__}: {exc}")

        sia.send_alerts(part.release(failed))
        sia.forward_learned(part, p)
    return touched
