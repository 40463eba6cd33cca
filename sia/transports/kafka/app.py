"""The Faust application: thin agents around the partitioned engine.

events (keyed by customer) -> `detect`: one PartitionEngine per owned partition ->
alerts topic; the events rep-level detectors handle are forwarded to events-by-rep ->
`detect_reps` (same code, rep-level detectors) -> alerts topic. Each detecting agent
stores the alerts of a batch before the batch's checkpoint (`store_sent`); `store_alerts`
also stores what reaches the alerts topic. Both deduplicate by alert id (Redis with a
TTL, then the store's unique constraint).

State: after each batch, every partition the batch touched writes a checkpoint of its
engine to a Faust table (changelog-backed), before the batch's offsets are committed
(Faust flushes the producer before it commits). A worker that takes a partition over
after a crash or a rebalance restores the last checkpoint and reprocesses the events
after it; the engine is deterministic, so the alerts it makes again carry the same ids
and are dropped downstream.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import faust

from sia.alerts.store import AlertStore
from sia.config import ConfigError
from sia.detectors.base import Detector
from sia.engine.partitions import (
    PartitionEngine,
    broadcast,
    for_rep,
    split_detectors,
)
from sia.engine.snapshot import SnapshotError
from sia.events.models import Event
from sia.policy import Alert, PolicyConfig
from sia.settings import Settings
from sia.transports import shared_config
from sia.transports.kafka import codec, sharing
from sia.transports.kafka.gaps import OffsetGaps
from sia.transports.kafka.pacing import CheckpointPacer
from sia.transports.kafka.reference import read_reference
from sia.transports.kafka.security import client_options, faust_credentials
from sia.transports.kafka.tails import TailWatch
from sia.transports.kafka.topics import CHECKPOINT_BYTES, Topics, bootstrap_servers

log = logging.getLogger("sia.worker")
T = TypeVar("T")
# Python's cyclic garbage collector, as a worker sets it (see `collect_less`)
GC_THRESHOLDS = (50_000, 20, 20)
SHARE_WITHIN = 0.02  # seconds a batch of population updates waits for more


def collect_less() -> None:
    """Run Python's cyclic garbage collector less often in a worker. Its engines hold
    millions of small long-lived objects (what the detectors learned), and with the
    default thresholds (700, 10, 10) each full collection walks all of them. Measured
    on one worker learning online retail from scratch: 23 full collections took 7.0 s
    and the young ones 1.5 s of its 48 CPU seconds; with these thresholds, 1.3 s of 32
    (sia/bench/kafka_bench.py, docs/BENCHMARKS.md). The collector only frees
    reference cycles, so this changes no result; cycles wait longer to be freed."""
    gc.set_threshold(*GC_THRESHOLDS)


class Partitions:
    """The engines of the partitions a worker owns for one keyed stream, and their
    checkpoints in a table."""

    def __init__(self, name: str, make_detectors: Callable[[], list[Detector[Any]]],
                 policy_config: PolicyConfig, table: Any, *, sources: int = 1) -> None:
        self.name = name
        self.sources = sources  # partitions feeding each of these (merged in event time)
        self.make_detectors = make_detectors
        self.policy_config = policy_config
        self.table = table
        self.engines: dict[int, PartitionEngine] = {}
        self.starts: dict[int, int] = {}  # new states that must start at an offset
        self.share = 0  # partitions that share population models (0: each its own)
        self.forward_types: frozenset[str] = frozenset()  # events forwarded by rep

    def prepared(self, partition: int, part: PartitionEngine) -> PartitionEngine:
        """The partition's engine, sharing population models and noting what to forward
        as this worker is configured to."""
        if self.share:
            part.share_population(partition, self.share)
        part.forward_types = self.forward_types
        if self.forward_types and part.forwards is None:
            part.forwards = []
        return part

    def engine(self, partition: int) -> PartitionEngine:
        """The partition's engine: in memory, else restored from its last checkpoint,
        else new."""
        part = self.engines.get(partition)
        if part is None:
            blob = self.table.data.get(str(partition))
            if blob is None:
                part = PartitionEngine.new(self.make_detectors(), self.policy_config,
                                           sources=self.sources)
                log.info("%s partition %d: no checkpoint, starting to learn", self.name,
                         partition)
            else:
                part = PartitionEngine.restore(blob, detectors=self.make_detectors(),
                                               policy_config=self.policy_config)
                log.info("%s partition %d: restored %d events learned (%d bytes)",
                         self.name, partition, part.engine.observed, len(blob))
            self.engines[partition] = self.prepared(partition, part)
        return part

    def needs_history(self, partition: int, first_offset: int) -> bool:
        """True for a partition that has learned no event (no checkpoint, or one of
        nothing learned) whose stream starts after offset 0: the events before it are
        gone (retention), and with them the reference data they carried. (Its engine
        may exist, and be checkpointed, already: population updates can arrive before
        its first events, and the live clock checkpoints every partition it ticks.)"""
        if first_offset <= 0 or partition in self.starts:
            return False
        if partition not in self.engines and self.table.data.get(str(partition)) is None:
            return True
        part = self.engine(partition)
        return part.offset < 0 and part.engine.observed == 0

    def _new(self, partition: int) -> PartitionEngine:
        """A new engine for the partition, keeping the population updates its current
        engine (if any, with nothing learned) has received."""
        part = PartitionEngine.new(self.make_detectors(), self.policy_config,
                                   sources=self.sources)
        old = self.engines.get(partition)
        if old is not None and old.population is not None:
            part.population = old.population
        return part

    def start_at(self, partition: int, offset: int) -> None:
        """Start the partition's engine new, as covering every offset before `offset`
        (there are none left to learn): it seeks back to `offset` if handed a later one."""
        self.engines[partition] = self.prepared(partition, self._new(partition))
        self.starts[partition] = offset

    def covered(self, partition: int) -> int | None:
        """The last offset the partition's state covers; None for a new state that
        may start anywhere (a new topic, or history cut by retention)."""
        last = self.engines[partition].offset
        if last >= 0:
            return last
        start = self.starts.get(partition)
        return None if start is None else start - 1

    def seed(self, partition: int, records: list[Event]) -> None:
        """Start the partition's engine from the latest reference records."""
        part = self._new(partition)
        for record in records:
            part.engine.observe(record)  # learned like any record; nothing is alerted
        part.references += len(records)
        self.engines[partition] = self.prepared(partition, part)

    def checkpoint(self, partition: int) -> int:
        """Write the partition's checkpoint to the table's changelog; its size."""
        blob = self.engines[partition].checkpoint()
        if len(blob) > CHECKPOINT_BYTES:
            raise RuntimeError(
                f"{self.name} partition {partition}: checkpoint of {len(blob)} bytes exceeds "
                f"{CHECKPOINT_BYTES}; raise SIA_KAFKA_PARTITIONS")
        key = str(partition)
        self.table.data[key] = blob
        self.table.send_changelog(partition, key, blob)
        return len(blob)

    def restore(self, partition: int) -> bool:
        """Go back to the partition's last checkpoint; False (and nothing changed) when
        it has none."""
        if self.table.data.get(str(partition)) is None:
            return False
        self.engines.pop(partition, None)
        self.engine(partition)
        return True

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop the engines of partitions this worker no longer owns: if one comes back,
        it is restored from the checkpoint its last owner wrote."""
        for p in partitions:
            self.engines.pop(p, None)
            self.starts.pop(p, None)


def _data_dir(settings: Settings) -> dict[str, Any]:
    """Faust's `datadir`: one folder per app id inside SIA_KAFKA_DATA_DIR (Faust expands
    {conf.name}); nothing when unset (Faust's default, in the working directory)."""
    if not settings.kafka_data_dir:
        return {}
    return {"datadir": os.path.join(settings.kafka_data_dir, "{conf.name}-data")}


class SiaApp:
    """Builds the Faust app and holds what its agents share."""

    def __init__(self, settings: Settings, make_detectors: Callable[[], list[Detector[Any]]],
                 policy_config: PolicyConfig, *, store: AlertStore | None = None,
                 redis: Any = None, config_version: str | None = None) -> None:
        self.settings = settings
        self.topics = Topics.from_settings(settings)
        self.store = store
        self._unstored: list[Alert] = []  # sent, not yet stored (see `store_sent`)
        self.redis = redis
        self.config_version = config_version  # published with `sia publish-config`
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.counts = {"events": 0, "dead_letter": 0, "alerts": 0, "stored": 0,
                       "duplicate_alerts": 0, "checkpoints": 0, "checkpoint_bytes": 0,
                       "repeats": 0, "relearned": 0}
        self.gaps = OffsetGaps(self.counts)  # offsets a partition's state skipped
        self.tails = TailWatch()  # messages read at a partition's end but never learned
        self.pacer = CheckpointPacer(settings.kafka_checkpoint_seconds)
        self.counts["tail_rewinds"] = 0
        self.rep_types = {t for d in split_detectors(make_detectors())[1] for t in d.handles}
        self.sharing = settings.kafka_share_population and any(
            d.shares_population for d in split_detectors(make_detectors())[0])
        # the detecting and the sharing agents take turns with customer partitions: each
        # learns, sends and checkpoints a batch before the other may touch them
        self.customer_turn = asyncio.Lock()

        def customer_level() -> list[Detector[Any]]:
            return split_detectors(make_detectors())[0]

        def rep_level() -> list[Detector[Any]]:
            return split_detectors(make_detectors())[1]

        self.app = app = faust.App(
            settings.kafka_app_id, broker=settings.kafka_broker, store=settings.kafka_store,
            topic_partitions=settings.kafka_partitions,
            topic_replication_factor=settings.kafka_replication_factor,
            broker_credentials=faust_credentials(settings),
            key_serializer="raw", value_serializer="raw", web_enabled=False,
            producer_max_request_size=CHECKPOINT_BYTES + 1024 * 1024,
            consumer_max_fetch_size=CHECKPOINT_BYTES + 1024 * 1024,
            stream_buffer_maxsize=max(4096, settings.kafka_batch * 2),
            **_data_dir(settings),
            )
        t = self.topics
        self.events_topic = app.topic(t.events, partitions=t.partitions, value_type=bytes,
                                      key_type=bytes)
        self.by_rep_topic = app.topic(t.events_by_rep, partitions=t.rep_partitions,
                                      value_type=bytes, key_type=bytes)
        self.alerts_topic = app.topic(t.alerts, partitions=t.partitions, value_type=bytes,
                                      key_type=bytes)
        self.dead_letter_topic = app.topic(t.dead_letter, partitions=1, value_type=bytes,
                                           key_type=bytes)
        table_args: dict[str, Any] = {"key_type": str, "value_type": bytes}
        self.customers = Partitions(
            "events", customer_level, policy_config,
            app.Table("engine-state", partitions=t.partitions, **table_args))
        self.reps = Partitions(
            "events-by-rep", rep_level, policy_config,
            app.Table("rep-engine-state", partitions=t.rep_partitions, **table_args),
            sources=t.partitions)
        self.customers.forward_types = frozenset(self.rep_types)
        self.population_topic = None
        if self.sharing:
            self.customers.share = t.partitions
            self.population_topic = app.topic(t.population, partitions=t.partitions,
                                              value_type=bytes, key_type=bytes)
        self._register()

    # -- agents ------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        batch, within = self.settings.kafka_batch, self.settings.kafka_batch_seconds

        @app.task  # type: ignore[untyped-decorator]
        async def tune_collector() -> None:
            collect_less()

        @app.agent(self.events_topic, name="detect")
        async def detect(stream: Any) -> None:
            async for events in stream.take_events(batch, within=within):
                async with self.customer_turn:
                    await self.seed_missing_history(events, self.customers, customers=True)
                    touched = self.learn_batch(events, self.customers)
                    await sharing.send_updates(self, touched)
                    due = await self.customers_due(touched)
                    self.finish_batch(self.customers, touched, due=due)
                await self.seek_back()

        if self.population_topic is not None:
            @app.agent(self.population_topic, name="share-population")
            async def share_population(stream: Any) -> None:
                # partitions wait for each other at each boundary: in a backlog, one
                # round trip per day of history, so this batch closes quickly
                async for events in stream.take_events(batch, within=SHARE_WITHIN):
                    async with self.customer_turn:
                        touched = sharing.receive_updates(self, events)
                        await sharing.send_updates(self, touched)
                        self.finish_batch(self.customers, touched, checkpoint=False)
                    await self.seek_back()

            self.share_population = share_population

        @app.agent(self.by_rep_topic, name="detect-reps")
        async def detect_reps(stream: Any) -> None:
            async for events in stream.take_events(batch, within=within):
                await self.seed_missing_history(events, self.reps, customers=False)
                self.detect_rep_batch(events)
                await self.seek_back()

        @app.agent(self.alerts_topic, name="store-alerts")
        async def store_alerts(stream: Any) -> None:
            async for values in stream.take(500, within=0.5):
                await self.store_batch(values)

        @app.timer(interval=30.0, name="clock")  # type: ignore[untyped-decorator]
        async def clock() -> None:
            if self.settings.kafka_clock == "wall":
                now = datetime.now(UTC)
                await self.tick_all(now)
                self.report_idle_progress(now)
            await self.recover_dropped_tails()
            log.info("status: %s", self.status())

        @app.timer(interval=max(self.settings.kafka_checkpoint_seconds, 1.0),  # type: ignore[untyped-decorator]
                   name="checkpoints")
        async def checkpoints() -> None:
            await self.save_unsaved()

        @app.timer(interval=self.settings.config_poll_seconds,  # type: ignore[untyped-decorator]
                   name="config-watch")
        async def config_watch() -> None:
            await self.watch_config()

        @app.on_partitions_revoked.connect  # type: ignore[arg-type]
        async def on_revoked(app: Any, revoked: set[Any], **kwargs: Any) -> None:
            self.customers.forget(tp.partition for tp in revoked
                                  if tp.topic == self.topics.events)
            self.reps.forget(tp.partition for tp in revoked
                             if tp.topic == self.topics.events_by_rep)
            for partitions, topic in ((self.customers, self.topics.events),
                                      (self.reps, self.topics.events_by_rep)):
                self.pacer.forget(partitions.name,
                                  (tp.partition for tp in revoked if tp.topic == topic))
            self.tails.forget(revoked)

        self.detect, self.detect_reps, self.store_alerts = detect, detect_reps, store_alerts

    async def seed_missing_history(self, events: list[Any], partitions: Partitions, *,
                                   customers: bool) -> None:
        """Seed partitions that start without their history from the compacted
        reference topics (see sia/transports/kafka/reference.py).

        A partition with no checkpoint whose first message is past the earliest offset
        the topic still holds was not cut by retention: the group committed past
        messages no agent learned (see `OffsetGaps`). It starts from the earliest offset
        instead: the consumer seeks back to it."""
        first: dict[int, Any] = {}
        for event in events:
            message = event.message
            if message.offset < getattr(first.get(message.partition), "offset", 1 << 62):
                first[message.partition] = message
        for partition, message in sorted(first.items()):
            offset = message.offset
            if not partitions.needs_history(partition, offset):
                continue
            earliest = (await self.app.consumer.earliest_offsets(message.tp)).get(
                message.tp, offset)
            if earliest < offset:
                partitions.start_at(partition, earliest)
                log.warning("%s partition %d: no checkpoint, and handed offset %d although "
                            "the topic holds offsets from %d: learning from %d",
                            partitions.name, partition, offset, earliest, earliest)
                continue
            records = await read_reference(
                bootstrap_servers(self.settings.kafka_broker), self.topics,
                customers_partition=partition if customers else None,
                options=client_options(self.settings))
            partitions.seed(partition, records)
            log.info("%s partition %d: no checkpoint, and the events before offset %d are "
                     "gone: seeded with %d reference records from the compacted topics",
                     partitions.name, partition, offset, len(records))

    async def watch_config(self) -> None:
        """Apply a configuration published since the last look, and report the outcome."""
        if self.redis is None:
            return
        published = await asyncio.to_thread(shared_config.fetch, self.redis,
                                            self.settings.kafka_app_id)
        if published is not None and published.version != self.config_version:
            outcome = self.apply_config(published)
            await asyncio.to_thread(shared_config.report, self.redis,
                                    self.settings.kafka_app_id, self.name, outcome)

    def apply_config(self, published: shared_config.Published) -> str:
        """Move every owned partition to a newly published configuration, keeping what
        was learned (a checkpoint restored under the new thresholds), or refuse it as a
        whole; what happened, in one line."""
        def side(index: int) -> Callable[[], list[Detector[Any]]]:
            return lambda: split_detectors(make_detectors())[index]

        sides = ((self.customers, 0), (self.reps, 1))
        try:
            make_detectors, policy_config = published.load()
            moved = [{p: PartitionEngine.restore(part.checkpoint(), detectors=side(i)(),
                                                 policy_config=policy_config)
                      for p, part in partitions.engines.items()}
                     for partitions, i in sides]
        except (ConfigError, SnapshotError) as exc:
            self.config_version = published.version  # not retried until it changes
            outcome = f"refused {published.version}: {exc}"
            log.error("configuration %s", outcome)
            return outcome
        self.rep_types = {t for d in side(1)() for t in d.handles}
        self.customers.forward_types = frozenset(self.rep_types)
        for (partitions, i), engines in zip(sides, moved, strict=True):
            partitions.engines = {p: partitions.prepared(p, part) for p, part in engines.items()}
            partitions.make_detectors = side(i)
            partitions.policy_config = policy_config
        self.config_version = published.version
        count = sum(len(engines) for engines in moved)
        outcome = (f"applied {published.version} (published {published.published_at}) "
                   f"to {count} partitions")
        log.info("configuration %s", outcome)
        return outcome

    def status(self) -> str:
        """One line for the log: counts, and per owned input partition where the worker
        has read to against the partition's end (``paused`` when Faust holds it back)."""
        consumer = self.app.consumer
        paused: set[Any] = getattr(consumer, "_paused_partitions", set())
        read = getattr(consumer, "_read_offset", {})
        parts = []
        for tp in sorted(consumer.assignment()):
            if tp.topic not in (self.topics.events, self.topics.events_by_rep,
                                self.topics.population):
                continue
            try:
                end = consumer.highwater(tp)
            except Exception:  # not known before the first fetch
                end = None
            flag = " paused" if tp in paused else ""
            parts.append(f"{tp.topic}[{tp.partition}] {read.get(tp)}/{end}{flag}")
        counts = " ".join(f"{k}={v}" for k, v in self.counts.items())
        engines = self.customers.engines.values()
        held = sum(len(part.held) for part in engines)  # waiting for a boundary
        waiting = sum(1 for part in engines if part.waiting)
        return (f"{counts} held={held} waiting_partitions={waiting}; "
                + (", ".join(parts) or "no input partitions") + self.waits())

    def waits(self) -> str:
        """What each waiting customer partition waits for (shared population models):
        the partitions not complete through its boundary, and how far they are."""
        def through(complete: int | None) -> str:
            if complete is None:
                return "nothing yet"
            return f"through {datetime.fromtimestamp(complete, UTC):%Y-%m-%d %H:%M}"

        waits = []
        for p, part in sorted(self.customers.engines.items()):
            behind = part.waiting_for()
            if behind and part.next_tick is not None:
                others = ", ".join(f"{q} ({through(c)})" for q, c in behind)
                waits.append(f"partition {p} waits at {part.next_tick:%Y-%m-%d %H:%M} "
                             f"for {others}")
        return "; " + "; ".join(waits) if waits else ""

    def detect_batch(self, events: Iterable[Any], partitions: Partitions) -> None:
        """Decode, learn and detect for a batch of messages of the events topic; then
        checkpoint every partition the batch touched and tell the rep stream how far in
        event time each has come (the `detect` agent's steps, without waiting for the
        population updates to be delivered)."""
        touched = self.learn_batch(events, partitions)
        sharing.send_updates_soon(self, touched)
        self.finish_batch(partitions, touched)

    def learn_batch(self, events: Iterable[Any], partitions: Partitions) -> set[int]:
        """Decode, learn and detect for a batch of messages of the events topic, sending
        alerts and what the rep stream needs; the partitions touched. Bad messages go to
        the dead-letter topic."""
        touched: set[int] = set()
        by_partition: dict[int, list[tuple[Any, Event]]] = {}
        for message, _, record in self._new_messages(events, partitions, touched,
                                                     codec.decode_event, "event"):
            by_partition.setdefault(message.partition, []).append((message, record))
        for p, items in by_partition.items():
            self._learn_partition(partitions, p, items)
        return touched

    def finish_batch(self, partitions: Partitions, touched: set[int], *,
                     checkpoint: bool = True, due: set[int] | None = None) -> None:
        """Store the alerts sent, checkpoint the customer partitions a batch touched (as
        often as `kafka_checkpoint_seconds` allows, or `due`), then tell the rep stream
        how far in event time each has learned.

        Batches of population updates are not checkpointed at once: in a backlog they
        come once per boundary, and each would write every partition's whole state.
        The partitions they touched are left unsaved, for the next checkpoint due;
        until then a new owner restores an exchange behind the group's committed offset
        and reads the updates again: from offset 0 if it has none, after a seek back
        when a later message reveals the gap (`OffsetGaps`), or when the clock finds it
        (`TailWatch`)."""
        if checkpoint:
            self._checkpoint(partitions, touched, due)
        else:
            self.store_sent()
            self.pacer.saved(partitions.name, touched, ())
        if self.rep_types:
            for p in sorted(touched):
                reached = partitions.engines[p].reached
                if reached is not None:
                    self.send_progress(p, reached)

    def detect_rep_batch(self, events: Iterable[Any]) -> None:
        """The same for the events-by-rep topic: forwarded events and progress go through
        each rep partition's event-time merge before its detectors see them."""
        touched: set[int] = set()
        for message, part, item in self._new_messages(events, self.reps, touched,
                                                      codec.decode_forwarded,
                                                      "forwarded event"):
            if item.event is not None:
                record = item.event
                self._process(message, record.event_id, part.observe_from, item.source,
                              item.offset, record)
            else:
                self._process(message, f"progress of partition {item.source}",
                              part.advance, item.source, item.reached, count=False)
        self._checkpoint(self.reps, touched)

    def _new_messages(self, events: Iterable[Any], partitions: Partitions,
                      touched: set[int], decode: Callable[[bytes | None], T], what: str,
                      ) -> Iterator[tuple[Any, PartitionEngine, T]]:
        """Each message the partition's state does not cover yet, with its partition's
        engine and its decoded value; its partition is added to `touched`. Messages that
        do not decode go to the dead letters.

        After a crash the group resumes from its last committed offset, which can be
        behind the last checkpoint: messages at or before the offset the checkpoint
        covers are skipped by offset, not only by event id (ids are remembered for a
        while of event time, offsets exactly). It can also be ahead of the checkpoint
        (Faust commits past messages it dropped at a rebalance): then the partition seeks
        back (`OffsetGaps`)."""
        for event in events:
            message = event.message
            part = partitions.engine(message.partition)
            if message.offset <= part.offset:
                self.counts["repeats"] += 1
                continue
            if not self.gaps.follows(message, partitions.covered(message.partition)):
                continue  # the state lacks earlier offsets: learned after a seek back
            part.offset = message.offset
            touched.add(message.partition)
            try:
                value = decode(event.value)
            except codec.Undecodable as exc:
                self.reject(message, f"invalid {what}: {exc}")
                continue
            yield message, part, value

    async def seek_back(self) -> None:
        """Seek back to the offsets partitions' states lack (see `OffsetGaps`)."""
        for tp, offset in self.gaps.take_seeks().items():
            await self.app.consumer.seek(tp, offset)

    async def recover_dropped_tails(self) -> None:
        """Seek back where the consumer read messages at a partition's end that its state
        never learned (see sia/transports/kafka/tails.py). Not during a rebalance."""
        if self.app.rebalancing:
            return
        consumer = self.app.consumer
        inputs = (self.topics.events, self.topics.events_by_rep, self.topics.population)
        read: dict[Any, int] = {}  # the last offset consumed: the group's, or this worker's
        for tp in consumer.assignment():
            if tp.topic in inputs:
                try:
                    position = await asyncio.wait_for(consumer.position(tp), timeout=5.0)
                except Exception:  # unknown while the consumer resets it
                    continue
                if position is not None:
                    read[tp] = position - 1
        async with self.customer_turn:
            seeks = {}
            for tp, last in read.items():
                covered = self._covered(tp)
                target = None if covered is None else self.tails.look(tp, covered, last)
                if target is not None:
                    seeks[tp] = (target, last, covered)
            for tp, (target, last, covered) in seeks.items():
                earliest = (await consumer.earliest_offsets(tp)).get(tp, 0)
                if earliest > last:
                    continue  # retention deleted them: nothing to read again
                target = max(target, earliest)
                log.warning("%s[%d]: consumed up to offset %d, but the state covers offsets "
                            "up to %d only, and neither moved since the last look: seeking "
                            "back to %d", tp.topic, tp.partition, last, covered, target)
                self.counts["tail_rewinds"] += 1
                await consumer.seek(tp, target)

    def _covered(self, tp: Any) -> int | None:
        """The last offset of input partition `tp` its state has learned (-1: none);
        None when there is no state yet (the group's committed offset is all there is)."""
        partitions = self.reps if tp.topic == self.topics.events_by_rep else self.customers
        p = tp.partition
        if p not in partitions.engines and partitions.table.data.get(str(p)) is None:
            return None
        part = partitions.engine(p)
        if tp.topic == self.topics.population:
            return part.population.offset if part.population is not None else None
        covered = partitions.covered(p)
        return -1 if covered is None else covered

    def _process(self, message: Any, what: str, run: Callable[..., list[Alert]],
                 *args: Any, count: bool = True) -> bool:
        """Run one step of an engine and send its alerts; a failure goes to the dead
        letters with its reason (a detector's bug must not stop the stream)."""
        try:
            alerts = run(*args)
        except Exception as exc:
            log.exception("processing %s failed", what)
            self.reject(message, f"processing failed: {type(exc).__name__}: {exc}")
            return False
        if count:
            self.counts["events"] += 1
        self.send_alerts(alerts)
        return True

    def _learn_partition(self, partitions: Partitions, p: int,
                         items: list[tuple[Any, Event]]) -> None:
        """Learn a batch's events of partition `p` run by run (see PartitionEngine.runs:
        the same alerts as event by event; the catalog is constant within a run, so each
        event's rep is what it would have been right after learning it), send the alerts
        and forward what was learned by rep. A run that reaches a tick boundary before
        every partition is complete through it is held (see `PartitionEngine.release`).

        A run that fails (a detector's bug) leaves its detectors with part of it learned,
        each up to a different event. So the partition goes back to its last checkpoint
        and learns the batch's events one by one, as `observe` would have: only the
        failing event goes to the dead letters. What was sent again is dropped
        downstream (alert ids and forwarded event ids are deterministic)."""
        part = partitions.engines[p]
        records = [record for _, record in items]
        offsets = [message.offset for message, _ in items]
        for run in part.runs(records):
            try:
                alerts = part.observe_run(records[run], offsets[run])
            except Exception as exc:
                if run.stop - run.start > 1 and partitions.restore(p):
                    log.exception("a run of %d events failed in %s partition %d: learning "
                                  "the batch's %d events again, one by one",
                                  run.stop - run.start, partitions.name, p, len(items))
                    self.counts["relearned"] += len(items)
                    self._learn_one_by_one(partitions.engines[p], p, items)
                    return
                log.exception("processing %d events from %s failed", run.stop - run.start,
                              records[run.start].event_id)
                for message, _ in items[run]:
                    self.reject(message, f"processing failed: {type(exc).__name__}: {exc}")
                continue
            self.counts["events"] += run.stop - run.start
            self.send_alerts(alerts)
            self.forward_learned(part, p)

    def _learn_one_by_one(self, part: PartitionEngine, p: int,
                          items: list[tuple[Any, Event]]) -> None:
        last = part.offset
        for message, record in items:
            part.offset = message.offset
            self._process(message, record.event_id, part.observe, record)
            self.forward_learned(part, p)
        part.offset = max(part.offset, last)

    def _checkpoint(self, partitions: Partitions, touched: set[int],
                    due: set[int] | None = None) -> None:
        """Checkpoint the partitions due (see pacing.py): touched by this batch or left
        unsaved by an earlier one, and not checkpointed for `kafka_checkpoint_seconds`."""
        self.store_sent()  # first: a checkpoint must not cover events whose alerts are unstored
        if due is None:
            due = self.pacer.due(partitions.name, touched)
        gone = {p for p in due if p not in partitions.engines}
        self.pacer.forget(partitions.name, gone)
        due = due - gone
        for p in sorted(due):
            self.counts["checkpoint_bytes"] += partitions.checkpoint(p)
            self.counts["checkpoints"] += 1
        self.pacer.saved(partitions.name, touched, due)
        log.debug("%s: batch done, partitions %s, %d events so far", partitions.name,
                  sorted(touched), self.counts["events"])

    async def save_unsaved(self) -> None:
        """Checkpoint the partitions a batch left unsaved, once they are due (the
        `checkpoints` timer). Not during a rebalance: their new owner reads again."""
        if self.app.rebalancing:
            return
        async with self.customer_turn:
            due = await self.customers_due(set())
            if due:
                self._checkpoint(self.customers, set(), due)
        due = self.pacer.due(self.reps.name, ())
        if due:
            self._checkpoint(self.reps, set(), due)

    async def customers_due(self, touched: set[int]) -> set[int]:
        """The customer partitions to checkpoint now (see pacing.py), once the events
        they forwarded by rep are delivered (`deliver_forwards`) when there are any."""
        due = self.pacer.due(self.customers.name, touched)
        if due:
            await self.deliver_forwards()
        return due

    async def deliver_forwards(self) -> None:
        """Wait until Kafka has every message sent so far, the events forwarded by rep
        among them, before a checkpoint says their events are learned: a crash right
        after the checkpoint would otherwise lose a forwarded event for good (its
        customer partition does not learn it again). Only when rep-level detectors run."""
        if self.rep_types:
            await self.app.producer.flush()

    def forward_learned(self, part: PartitionEngine, partition: int) -> None:
        """Repartition by rep what the partition has learned since the last call and
        rep-level detectors need (reps and products once, from customer partition 0, to
        every rep partition), with where it came from."""
        if not part.forwards:
            return
        learned, part.forwards = part.forwards, []
        for offset, record, rep in learned:
            if broadcast(record):
                if partition == 0:
                    value = codec.encode_forwarded(partition, offset, record)
                    for p in range(self.topics.rep_partitions):
                        self.by_rep_topic.send_soon(key=record.event_id.encode(),
                                                    value=value, partition=p)
            elif rep is not None:
                self.by_rep_topic.send_soon(
                    key=rep.encode(),
                    value=codec.encode_forwarded(partition, offset, for_rep(record, rep)))

    def send_progress(self, partition: int, reached: datetime) -> None:
        """Tell every rep partition that customer partition `partition` has reached
        `reached` in event time (after the events it forwarded: same producer, same
        partition, so they arrive first)."""
        value = codec.encode_progress(partition, reached)
        for p in range(self.topics.rep_partitions):
            self.by_rep_topic.send_soon(key=b"", value=value, partition=p)

    def report_idle_progress(self, now: datetime) -> None:
        """Live mode: a customer partition that has read everything there is has reached
        now minus the allowed lateness, even if it saw no event lately; without this, one
        quiet partition would hold back every rep partition's merge."""
        if not self.rep_types:
            return
        floor = now - timedelta(seconds=self.settings.kafka_lateness_seconds)
        for tp, caught_up in self._events_partitions_owned():
            if caught_up is None:
                continue
            part = self.customers.engines.get(tp.partition)
            reached = part.reached if part is not None else None
            if caught_up:
                reached = max(reached, floor) if reached is not None else floor
            if reached is not None:
                self.send_progress(tp.partition, reached)

    def _events_partitions_owned(self) -> Iterator[tuple[Any, bool | None]]:
        """Each events partition this worker is assigned, and whether it has read all
        there is (None while Kafka has not told its end yet)."""
        consumer = self.app.consumer
        read = getattr(consumer, "_read_offset", {})
        for tp in consumer.assignment():
            if tp.topic != self.topics.events:
                continue
            last = read.get(tp)
            try:
                caught_up = (last + 1 if last is not None else 0) >= consumer.highwater(tp)
            except Exception:  # the end is unknown before the first fetch
                yield tp, None
                continue
            yield tp, caught_up

    def send_alerts(self, alerts: Iterable[Alert]) -> None:
        """Publish alerts (at least once; ids are deterministic); they are stored by
        `store_sent` before the checkpoint that covers their events."""
        for alert in alerts:
            self.counts["alerts"] += 1
            self.alerts_topic.send_soon(key=alert.finding.subject_id.encode(),
                                        value=codec.encode_alert(alert))
            if self.store is not None:
                self._unstored.append(alert)

    def store_sent(self) -> None:
        """Store the alerts sent since the last call, before the checkpoint that covers
        the events they came from: a crash before the checkpoint learns those events
        again and finds the same alerts, so none is lost and none is stored twice.

        The alerts topic alone is not enough for this: faust-streaming acks messages
        it skips as fetched in an earlier consumer generation, so across a rebalance
        `store-alerts` can see its commit pass alerts it never stored (seen once in the
        kill test; docs/SCALE_OUT.md). That agent still stores what reaches it (alerts
        stored here are dropped there as duplicates). If the store fails, the alerts
        are kept for the next call and the error is logged."""
        if not self._unstored:
            return
        try:
            self._store({a.alert_id: a for a in self._unstored})
        except Exception:
            log.exception("storing %d alerts failed; retrying after the next batch",
                          len(self._unstored))
            return
        self._unstored.clear()

    async def tick_all(self, now: datetime) -> None:
        """Clock-driven detection for every partition this worker owns (live mode).
        With shared population models, a customer partition that waits at a boundary
        tells the others, and one that has had no event yet (its engine made by the
        others' population messages) starts its clock: otherwise it would hold every
        other partition back."""
        async with self.customer_turn:
            touched = set(self.customers.engines)
            for p in sorted(touched):
                part = self.customers.engines[p]
                if self.sharing:
                    part.start_clock(now - timedelta(seconds=self.settings.kafka_lateness_seconds))
                self.send_alerts(part.tick_until(now))
                self.forward_learned(part, p)
            for rep_part in list(self.reps.engines.values()):
                self.send_alerts(rep_part.tick_until(now))
            if self.sharing:
                await sharing.send_updates(self, touched)
                self._checkpoint(self.customers, touched, await self.customers_due(touched))
            self.store_sent()

    def reject(self, message: Any, reason: str) -> None:
        """Keep a message that could not be processed, with its reason."""
        self._dead_letter(message.topic, message.partition, message.offset, message.key,
                          message.value, reason)

    def reject_learned(self, partition: int, offset: int, event: Event, reason: str) -> None:
        """Keep an event of the events topic, decoded already, that could not be learned
        (held at a boundary, then released), with its reason."""
        customer = getattr(event, "customer_id", None)
        self._dead_letter(self.topics.events, partition, offset,
                          customer.encode() if customer else None,
                          codec.encode_event(event), reason)

    def _dead_letter(self, topic: str, partition: int, offset: int, key: bytes | None,
                     value: bytes | None, reason: str) -> None:
        self.counts["dead_letter"] += 1
        log.warning("dead letter %s[%d]@%d: %s", topic, partition, offset, reason)
        self.dead_letter_topic.send_soon(key=key, value=codec.dead_letter(
            topic=topic, partition=partition, offset=offset, key=key, value=value,
            reason=reason))

    async def store_batch(self, values: list[bytes]) -> None:
        """Store alerts from the alerts topic (see `_store`); repeats within the batch
        count as duplicates."""
        alerts = {a.alert_id: a for a in map(codec.decode_alert, values)}
        self.counts["duplicate_alerts"] += len(values) - len(alerts)
        await asyncio.to_thread(self._store, alerts)

    def _store(self, alerts: dict[str, Alert]) -> None:
        """Store alerts once each: ids seen in Redis are dropped; the store's unique
        constraint catches the rest; Redis keys are set only after the store commits."""
        received = len(alerts)
        prefix = f"sia:{self.settings.kafka_app_id}:alert:"
        if self.redis is not None and alerts:
            seen = self.redis.mget([prefix + i for i in alerts])
            for alert_id, mark in zip(list(alerts), seen, strict=True):
                if mark is not None:
                    del alerts[alert_id]
        self.counts["duplicate_alerts"] += received - len(alerts)
        if not alerts:
            return
        if self.store is not None:
            stored = self.store.add(list(alerts.values()))
            self.counts["stored"] += stored
            self.counts["duplicate_alerts"] += len(alerts) - stored
        if self.redis is not None:
            ttl = int(self.settings.alert_dedup_days * 86400)
            pipe = self.redis.pipeline(transaction=False)
            for alert_id in alerts:
                pipe.set(prefix + alert_id, "1", ex=ttl)
            pipe.execute()
