"""The front door for a Kafka deployment: `sia serve --kafka BOOTSTRAP`.

The API validates events as in the embedded mode; the journal then keeps each accepted
event's id (so a repeat is a duplicate, however late) and, inside the same transaction,
the events are sent to the events topic (keyed by customer, as `sia produce` does) by an
idempotent producer with acks=all, and acknowledged by the broker, before the commit.
If Kafka cannot take them, nothing is recorded and the sender gets an error to retry
on; if the process dies between Kafka's acknowledgement and the commit, a retry is sent
again and the workers' engines drop the repeat by its event id. The workers do the rest.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sia.events.models import Event
from sia.journal import Accepted, Journal, RejectEntry
from sia.journal.store import Refuse
from sia.service.ingest import JournalReceiver, Receiver, ReceiverUnavailable
from sia.settings import Settings
from sia.transports.kafka.producer import messages_for
from sia.transports.kafka.topics import Topics, bootstrap_servers, create_topics

SEND_TIMEOUT = 30.0  # seconds to wait for the broker's acknowledgements


class KafkaUnavailable(ReceiverUnavailable):
    """The broker did not take the events; nothing was recorded."""


class KafkaPublisher:
    """An idempotent aiokafka producer on an event loop of its own thread."""

    def __init__(self, bootstrap: str, topics: Topics) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sia-kafka",
                                        daemon=True)
        self._thread.start()
        self.producer: Any = self._call(self._start())

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(SEND_TIMEOUT)

    async def _start(self) -> Any:
        from aiokafka import AIOKafkaProducer

        await create_topics(self.bootstrap, self.topics)
        from sia.transports.kafka.security import client_options

        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                    enable_idempotence=True, linger_ms=5,
                                    **client_options())
        await producer.start()
        return producer

    def publish(self, events: list[Event]) -> None:
        """Send and wait for every acknowledgement (raises KafkaUnavailable)."""
        try:
            self._call(self._send(events))
        except Exception as exc:
            raise KafkaUnavailable(f"Kafka at {self.bootstrap} did not take the events "
                                   f"({type(exc).__name__}: {exc}); nothing was recorded: "
                                   "send them again") from exc

    async def _send(self, events: list[Event]) -> None:
        pending = []
        for event in events:
            for topic, key, value, partition in messages_for(event, self.topics):
                pending.append(await self.producer.send(topic, value, key=key,
                                                        partition=partition))
        await asyncio.gather(*pending)

    def close(self) -> None:
        """Flush and stop the producer, then the loop."""
        try:
            self._call(self.producer.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


class KafkaReceiver:
    """Journal ids and rejects here; the events themselves to Kafka."""

    def __init__(self, journal: Journal, publisher: KafkaPublisher) -> None:
        self.publisher = publisher
        self._journal = JournalReceiver(journal, publish=publisher.publish)

    def receive(self, events: Sequence[Event], rejects: Sequence[RejectEntry], *,
                source: str, positions: Sequence[int], refuse: Refuse) -> list[Accepted]:
        """Recorded and sent together, or neither."""
        return self._journal.receive(events, rejects, source=source, positions=positions,
                                     refuse=refuse)

    def backlog(self) -> int:
        """The workers learn; this process keeps no backlog of its own."""
        return 0

    def clock(self) -> datetime | None:
        """Newest event time this front door accepted."""
        return self._journal.clock()

    def close(self) -> None:
        """Flush and stop the producer."""
        self.publisher.close()


def kafka_receiver(bootstrap: str, settings: Settings) -> Callable[[Journal], Receiver]:
    """What `open_runtime` calls with the journal to get the Kafka receiver."""
    servers = bootstrap_servers(bootstrap if "://" in bootstrap else f"kafka://{bootstrap}")
    topics = Topics.from_settings(settings)

    def make(journal: Journal) -> Receiver:
        return KafkaReceiver(journal, KafkaPublisher(servers, topics))

    return make
