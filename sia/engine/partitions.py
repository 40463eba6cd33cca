"""The engine split by key: one engine per partition of a keyed stream.

When one process is not enough, events are split into partitions by customer (and,
for rep-level detectors, repartitioned by rep). Each partition has its own `Engine`
(with its own catalog of the reference data it has seen), its own policy state and its
own event-time clock, so what a partition finds depends only on the events of that
partition, in their order: never on how many workers share the partitions, or on which
worker owns one after a crash. Transports (Kafka, or the
embedded `replay_partitioned` that reproduces a Kafka run in one process) drive this.

State that detectors learn across customers (cross-sell co-purchase structure, product
decline, value quantiles, peer comparisons) is learned per partition, from that
partition's customers: a hash sample of 1/N of them. docs/SCALE_OUT.md says what
that costs.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from aiokafka.partitioner import murmur2

from sia.catalog import Catalog
from sia.detectors.base import Detector
from sia.engine import snapshot, state_codec
from sia.engine.engine import Engine, _boundary_after, raise_rejected
from sia.engine.merge import EventTimeMerge
from sia.engine.population import AT_TICK, PopulationExchange
from sia.events.models import Customer, Event, Product, Rep
from sia.policy import Alert, Policy, PolicyConfig

DAY = timedelta(days=1)
REFERENCE = (Customer, Product, Rep)


def partition_for(key: str, partitions: int) -> int:
    """Kafka's default partition for a key (murmur2 of its UTF-8 bytes, like the Java
    client and aiokafka), so embedded and Kafka runs split events the same way."""
    return (int(murmur2(key.encode())) & 0x7FFFFFFF) % partitions


def rep_key(event: Event, catalog: Catalog, links: dict[str, str]) -> str | None:
    """The rep an event counts for: its own rep, else the customer's owner, else the rep
    last credited with that customer (`links`, updated here). None when none is known."""
    customer: str | None = getattr(event, "customer_id", None)
    rep: str | None = getattr(event, "rep_id", None)
    if customer is None:
        return rep
    if not rep:
        record = catalog.customers.get(customer)
        rep = (record.owner_rep_id if record is not None else None) or links.get(customer)
    if rep:
        links[customer] = rep
    return rep or None


class PartitionEngine:
    """One partition: engine, policy and the event-time clock that ticks its detectors."""

    def __init__(self, engine: Engine, policy: Policy, *, tick_every: timedelta = DAY,
                 sources: int = 1) -> None:
        self.engine = engine
        self.policy = policy
        self.tick_every = tick_every
        self.next_tick: datetime | None = None
        self.reached: datetime | None = None  # the latest event time observed
        # the newest event time accepted (learned, or held while a boundary waits),
        # reference records excepted: what the engine's time rules judge new events by
        self.accepted: datetime | None = engine.stream_clock
        # a repartitioned stream fed by several partitions is merged into event time
        self.merge = EventTimeMerge(sources) if sources > 1 else None
        self.links: dict[str, str] = {}  # customer -> rep, for the repartition by rep
        self.offset = -1  # the last input offset learned (set by the transport)
        self.references = 0  # reference records observed (the catalog changed)
        self._catalog_blob: bytes | None = None
        self._catalog_seen = -1
        # population models shared with the other partitions (see `share_population`)
        self.population: PopulationExchange | None = None
        self.held: list[tuple[int, Event]] = []  # (offset, event) waiting for a boundary
        self.waiting = False  # a tick is due, but not every partition is complete
        self.prepared: datetime | None = None  # the boundary `learn_at_tick` ran for
        # with `forward_types`: each event learned, as (offset, event, rep to forward to)
        self.forward_types: frozenset[str] = frozenset()
        self.forwards: list[tuple[int, Event, str | None]] | None = None

    @classmethod
    def new(cls, detectors: Sequence[Detector[Any]], policy_config: PolicyConfig, *,
            tick_every: timedelta = DAY, sources: int = 1) -> PartitionEngine:
        """A partition that has learned nothing yet (with a catalog of its own); `sources`
        is how many partitions feed it (see `observe_from`). Its engine leaves rollbacks to
        the transport's checkpoints (a detector's exception propagates) and raises
        `EventRejected` for an event whose time it refuses, before anything is ticked or
        learned: the transport dead-letters it as it does a failing event."""
        engine = Engine(detectors, isolate=False, on_reject=raise_rejected)
        return cls(engine, Policy(policy_config), tick_every=tick_every, sources=sources)

    def share_population(self, source: int, sources: int) -> PopulationExchange:
        """Learn the population models of sharing detectors from every partition's
        customers (sia/engine/population.py): this partition is `source` of `sources`."""
        exchange = self.population or PopulationExchange(source, sources)
        self.population = exchange
        for detector in self.engine.detectors:
            if detector.shares_population:
                detector.population_outbox = exchange.outbox
        if self.next_tick is not None:
            exchange.outbox.stamp = int(self.next_tick.timestamp())
        return exchange

    def complete(self) -> int | None:
        """The boundary (epoch seconds) through which this partition has made every
        population update: the one it waits at, else the last it ticked."""
        if self.next_tick is None:
            return None
        boundary = self.next_tick if self.waiting else self.next_tick - self.tick_every
        return int(boundary.timestamp())

    def waiting_for(self) -> list[tuple[int, int | None]]:
        """While the partition waits at a boundary: the partitions it waits for, each
        with how complete it is (epoch seconds, None before it said anything)."""
        if not self.waiting or self.population is None or self.next_tick is None:
            return []
        return self.population.behind(int(self.next_tick.timestamp()))

    def observe(self, event: Event) -> list[Alert]:
        """Tick at every boundary the partition's clock crosses, then learn the event.
        With shared population models, an event that must wait for a boundary is held
        (with the offset the transport set) and learned by `release`. An event whose
        time the engine refuses is refused before it ticks anything (`admit_times`)."""
        if not self.admit_times([event]):
            return []
        return self._observe_admitted(event)

    def admit_times(self, events: Sequence[Event]) -> list[Event]:
        """`events` (in stream order) without those whose time the engine refuses, judged
        by the newest time this partition accepted (`accepted`: learned or held while a
        boundary waits; a Kafka batch can bring months of events to hold). The refused
        are passed to the engine's reject hook (which raises `EventRejected` for the
        transport: then none of `events` is accepted)."""
        clock = self.accepted
        kept: list[Event] = []
        refused: list[tuple[Event, str]] = []
        seen = self.engine.seen
        for event in events:
            if event.event_id in seen:  # a repeat: the engine judges it when learned
                kept.append(event)
                continue
            problem = self.engine.time_problem(event, clock)
            if problem is not None:
                refused.append((event, problem))
                continue
            kept.append(event)
            if not isinstance(event, REFERENCE) and (clock is None
                                                     or event.occurred_at > clock):
                clock = event.occurred_at
        for event, problem in refused:
            self.engine.refuse(event, problem)
        self.accepted = clock
        return kept

    def _observe_admitted(self, event: Event) -> list[Alert]:
        """`observe` of an event whose time was accepted."""
        if self.held:
            self.held.append((self.offset, event))
            return []
        at = event.occurred_at
        alerts: list[Alert] = []
        if self.next_tick is None:
            self.start_clock(at)
        while at >= self.next_tick:  # type: ignore[operator]
            ticked = self._tick_next()
            if ticked is None:
                self.held.append((self.offset, event))
                return alerts
            alerts.extend(ticked)
        if self.reached is None or at > self.reached:
            self.reached = at
        if isinstance(event, REFERENCE):
            self.references += 1
        alerts.extend(self._admit(self.engine.observe(event)))
        if self.forwards is not None:
            self._note_forward(self.offset, event)
        return alerts

    def _note_forward(self, offset: int, event: Event) -> None:
        """Record a learned event for the rep stream, with the rep it counts for as the
        catalog has it right after learning it."""
        rep = None
        if not broadcast(event) and event.type in self.forward_types:
            rep = rep_key(event, self.engine.catalog, self.links)
        self.forwards.append((offset, event, rep))  # type: ignore[union-attr]

    def runs(self, events: Sequence[Event]) -> Iterator[slice]:
        """Split `events` (in stream order, not yet learned) into the runs `observe_run`
        learns together: a run ends before an event that reaches the partition's next
        tick boundary, and a reference record is a run of its own (it changes the
        catalog the detectors read). Within a run, nothing but learning happens, so
        learning it detector after detector gives what `observe` on each gives. An event
        whose time the engine refuses moves no boundary (`observe_run` refuses it)."""
        next_tick = self.next_tick
        start = 0
        clock = self.accepted  # as `admit_times` judges
        for i, event in enumerate(events):
            at = event.occurred_at
            if self.engine.time_problem(event, clock) is not None:
                continue
            reference = isinstance(event, REFERENCE)
            if not reference and (clock is None or at > clock):
                clock = at
            if next_tick is None:
                next_tick = _boundary_after(at, self.tick_every)
            if (reference or at >= next_tick) and i > start:
                yield slice(start, i)
                start = i
            while at >= next_tick:
                next_tick += self.tick_every
            if reference:
                yield slice(i, i + 1)
                start = i + 1
        if start < len(events):
            yield slice(start, len(events))

    def observe_run(self, run: Sequence[Event],
                    offsets: Sequence[int] | None = None) -> list[Alert]:
        """Learn one run of `runs`: the same alerts, in the same order, as `observe` on
        each event in turn, but through `Engine.observe_many` (each detector takes the
        run's events one after another). `offsets`: each event's input offset (else
        `offset` for all), kept with what is held or forwarded."""
        if offsets is None:
            offsets = [self.offset] * len(run)
        admitted = {id(e) for e in self.admit_times(run)}
        if len(admitted) < len(run):
            kept = [(e, o) for e, o in zip(run, offsets, strict=True) if id(e) in admitted]
            if not kept:
                return []
            run, offsets = [e for e, _ in kept], [o for _, o in kept]
        if len(run) == 1:
            last, self.offset = self.offset, offsets[0]
            try:
                return self._observe_admitted(run[0])
            finally:
                self.offset = last
        first = run[0].occurred_at
        boundary = self.next_tick or _boundary_after(first, self.tick_every)
        while first >= boundary:
            boundary += self.tick_every
        if any(isinstance(e, REFERENCE) or e.occurred_at >= boundary for e in run):
            raise ValueError("not a run of PartitionEngine.runs: it crosses a tick "
                             "boundary or holds a reference record")
        if self.held:
            self.held.extend(zip(offsets, run, strict=True))
            return []
        if self.next_tick is None:
            self.start_clock(first)
        alerts = self.tick_until(first)  # what `observe` ticks before the first event
        if self.waiting:
            self.held.extend(zip(offsets, run, strict=True))
            return alerts
        latest = max(e.occurred_at for e in run)
        if self.reached is None or latest > self.reached:
            self.reached = latest
        alerts.extend(self._admit(self.engine.observe_many(run)))
        if self.forwards is not None:
            for offset, event in zip(offsets, run, strict=True):
                self._note_forward(offset, event)
        return alerts

    def observe_from(self, source: int, offset: int, event: Event) -> list[Alert]:
        """Learn an event forwarded from partition `source` (at `offset` there) once the
        merge of all sources has put it in event-time order."""
        if self.merge is None:
            return self.observe(event)
        return [a for ready in self.merge.add(source, offset, event)
                for a in self.observe(ready)]

    def advance(self, source: int, reached: datetime) -> list[Alert]:
        """Partition `source` has reached `reached` in event time: learn what that
        releases from the merge."""
        if self.merge is None:
            return []
        return [a for ready in self.merge.advance(source, reached)
                for a in self.observe(ready)]

    def tick_until(self, now: datetime) -> list[Alert]:
        """Run the clock-driven detection for every boundary up to `now` (a timer's
        wall-clock time when live, the end of a replay otherwise)."""
        alerts: list[Alert] = []
        if self.held:
            return alerts  # the clock is past a boundary that waits already
        while self.next_tick is not None and self.next_tick <= now:
            ticked = self._tick_next()
            if ticked is None:
                break
            alerts.extend(ticked)
        return alerts

    def release(self, failed: Callable[[int, Event, Exception], None] | None = None
                ) -> list[Alert]:
        """Learn what was held while a boundary waited, as far as the other partitions'
        completeness now allows (call after population updates arrive). An event whose
        learning raises (a detector's bug) is passed to `failed` with its offset and
        the exception, and the rest are learned; without `failed` the exception
        propagates, and the events after it stay held."""
        alerts: list[Alert] = []
        if self.waiting and not self.held:
            alerts.extend(self.tick_until(self.next_tick))  # type: ignore[arg-type]
        while self.held:
            held, self.held = self.held, []
            last = self.offset
            for i, (offset, event) in enumerate(held):
                self.offset = offset
                try:  # judged when it came
                    alerts.extend(self._observe_admitted(event))
                except Exception as exc:
                    if failed is None:
                        self.held[:0] = held[i + 1:]
                        self.offset = last
                        raise
                    failed(offset, event, exc)
                if self.held:  # waits again: keep the rest, in order
                    self.held.extend(held[i + 1:])
                    break
            self.offset = last
            if self.held:
                break
        return alerts

    def start_clock(self, at: datetime) -> None:
        """Start the clock (its first boundary is the one after `at`), if not yet."""
        if self.next_tick is not None:
            return
        self.next_tick = _boundary_after(at, self.tick_every)
        if self.population is not None:
            self.population.outbox.stamp = int(self.next_tick.timestamp())

    def _tick_next(self) -> list[Alert] | None:
        """Tick the next boundary; None (and `waiting`) when shared population models
        are not complete through it yet."""
        boundary = self.next_tick
        assert boundary is not None
        exchange = self.population
        if exchange is not None:
            stamp = int(boundary.timestamp())
            if self.prepared != boundary:
                self._learn_at_tick(exchange, boundary)
            exchange.mark_complete(exchange.source, stamp)
            # from now on, what this partition learns comes after the boundary
            exchange.outbox.stamp = int((boundary + self.tick_every).timestamp())
            if not exchange.ready(stamp):
                self.waiting = True
                return None
            exchange.apply_through(stamp, {d.name: d for d in self.engine.detectors})
        self.waiting = False
        alerts = self._admit(self.engine.tick(boundary))
        self.next_tick = boundary + self.tick_every
        return alerts

    def _learn_at_tick(self, exchange: PopulationExchange, boundary: datetime) -> None:
        """What falls due at the boundary (drift's silences that ran their course) is
        learned by every partition before it ticks, after the day's updates of every
        partition, in one order: as one engine learns it right before it predicts. With
        one partition, it is learned at once (exactly the embedded engine)."""
        outbox = exchange.outbox
        stamp = int(boundary.timestamp()) + AT_TICK
        outbox.stamp = stamp
        deferred = outbox.defer = exchange.sources > 1
        try:
            self.engine.learn_at_tick(boundary)
        finally:
            outbox.defer = False
        if deferred:
            exchange.defer_own(stamp)
        self.prepared = boundary

    def _admit(self, findings: Iterable[Any]) -> list[Alert]:
        admitted = (self.policy.admit(f) for f in findings)
        return [a for a in admitted if a is not None]

    # checkpoints: everything learned, with the versions and thresholds it was made with,
    # as two state-codec documents (sia/engine/state_codec.py: no pickle, nothing in a
    # checkpoint runs): the partition's catalog, written again only after reference data
    # changed it, then the rest
    def checkpoint(self) -> bytes:
        """The partition's learned state, compressed."""
        e = self.engine
        if self._catalog_blob is None or self._catalog_seen != self.references:
            self._catalog_blob = state_codec.dumps(e.catalog)
            self._catalog_seen = self.references
        state = {"detectors": {d.name: d for d in e.detectors}, "seen": e.seen,
                 "clock": e.clock, "stream_clock": e.stream_clock,
                 "counts": (e.observed, e.duplicates),
                 "cooldowns": self.policy.cooldowns,
                 "inhibitor": self.policy.inhibitor._sources,
                 "suppressed": self.policy.suppressed, "next_tick": self.next_tick,
                 "links": self.links, "references": self.references,
                 "reached": self.reached, "merge": self.merge, "offset": self.offset,
                 "population": self.population, "held": self.held, "waiting": self.waiting,
                 "prepared": self.prepared}
        raw = self._catalog_blob + b"\n" + state_codec.dumps(state)  # JSON has no raw \n
        return snapshot.dump_raw(zlib.compress(raw, 1), detectors=e.detector_params())

    @classmethod
    def restore(cls, blob: bytes, *, detectors: Sequence[Detector[Any]],
                policy_config: PolicyConfig, tick_every: timedelta = DAY) -> PartitionEngine:
        """Continue from a checkpoint: what was learned is kept; thresholds configured
        now apply (a changed global threshold is refused, as with snapshots)."""
        payload = snapshot.load_raw(blob, detectors=[d.name for d in detectors])
        try:
            catalog_blob, state_blob = state_codec.decompress(payload).split(b"\n")
            catalog, state = state_codec.loads(catalog_blob), state_codec.loads(state_blob)
        except ValueError as exc:  # state_codec.StateError too
            raise snapshot.SnapshotError(
                f"checkpoint payload is corrupt or not SIA state: {exc}") from exc
        engine = Engine.from_learned(state["detectors"], detectors, isolate=False,
                                     on_reject=raise_rejected)
        engine.catalog = catalog
        engine.seen = state["seen"].resumed(engine.seen.retention)
        engine.clock = state["clock"]
        engine.stream_clock = state.get("stream_clock", engine.clock)
        engine.observed, engine.duplicates = state["counts"]
        policy = Policy(policy_config, cooldowns=state["cooldowns"])
        policy.inhibitor._sources = state["inhibitor"]
        policy.suppressed = state["suppressed"]
        restored = cls(engine, policy, tick_every=tick_every)
        restored.next_tick = state["next_tick"]
        restored.links = state["links"]
        restored.references = state["references"]
        restored.reached = state.get("reached")
        restored.merge = state.get("merge")
        restored.offset = state.get("offset", -1)
        restored.population = state.get("population")
        restored.held = state.get("held", [])
        restored.accepted = max([t for t in [engine.stream_clock] if t is not None]
                                + [e.occurred_at for _, e in restored.held
                                   if not isinstance(e, REFERENCE)], default=None)
        restored.waiting = state.get("waiting", False)
        # a checkpoint from before `learn_at_tick` that waits has declared itself
        # complete: what falls due at the boundary is learned when it ticks, as then
        restored.prepared = state.get("prepared",
                                      restored.next_tick if restored.waiting else None)
        restored._catalog_blob, restored._catalog_seen = catalog_blob, restored.references
        return restored


def split_detectors(detectors: Sequence[Detector[Any]]
                    ) -> tuple[list[Detector[Any]], list[Detector[Any]]]:
    """(customer-keyed, rep-keyed) detectors."""
    by_customer = [d for d in detectors if d.keyed_by == "customer"]
    by_rep = [d for d in detectors if d.keyed_by == "rep"]
    unknown = [d.name for d in detectors if d.keyed_by not in ("customer", "rep")]
    if unknown:
        raise ValueError(f"detectors {unknown} are keyed by neither customer nor rep")
    return by_customer, by_rep


def broadcast(event: Event) -> bool:
    """Reference data every partition needs (products and reps), as opposed to records
    of one customer, which go to that customer's partition."""
    return isinstance(event, Product | Rep)


def for_rep(event: Event, rep: str) -> Event:
    """The event as the rep-level stream carries it: credited to `rep`."""
    if getattr(event, "rep_id", rep) == rep:
        return event
    return event.model_copy(update={"rep_id": rep})


def replay_partitioned(events: Iterable[Event], *, partitions: int, rep_partitions: int,
                       make_detectors: Callable[[], list[Detector[Any]]],
                       policy_config: PolicyConfig, tick_every: timedelta = DAY,
                       share_population: bool = False) -> Iterator[Alert]:
    """What a Kafka deployment with these partition counts computes, in one process.

    Events are split by customer exactly as `sia produce` splits them: a customer's
    records go to its partition, products and reps to every partition. Events that
    rep-level detectors handle are forwarded by rep and merged back into event time
    (`sia.engine.merge`), so what rep partitions learn does not depend on how workers
    interleave. Nothing is ticked after the last event: a stream has no end.

    With `share_population`, customer partitions learn the population models of sharing
    detectors from every partition (sia/engine/population.py): after each event, the
    partition that learned it sends its updates and completeness, and every partition
    learns what that releases.
    """
    customer_level, rep_level = split_detectors(make_detectors())
    rep_types = frozenset(t for d in rep_level for t in d.handles)

    def engines(count: int, side: int, sources: int = 1) -> list[PartitionEngine]:
        return [PartitionEngine.new(split_detectors(make_detectors())[side], policy_config,
                                    tick_every=tick_every, sources=sources)
                for _ in range(count)]

    by_customer = engines(partitions, 0) if customer_level else []
    by_rep = engines(rep_partitions, 1, sources=partitions) if rep_level else []
    offsets = [0] * partitions  # of each events partition, as `sia produce` fills them
    if share_population and by_customer:
        for source, part in enumerate(by_customer):
            part.share_population(source, partitions)
            part.forward_types, part.forwards = rep_types, []
        for event in events:
            targets = range(partitions) if broadcast(event) else (
                partition_for(getattr(event, "customer_id", None) or "", partitions),)
            for source in targets:
                part = by_customer[source]
                part.offset = offsets[source]
                yield from part.observe(event)
                offsets[source] += 1
            yield from _settle(by_customer, by_rep, set(targets))
        return
    links: dict[str, str] = {}
    catalog = Catalog()  # customer-level detectors off: the rep stream keeps its own
    for event in events:
        if broadcast(event):
            sources: Sequence[int] = range(partitions)
            for part in by_customer:
                yield from part.observe(event)
            for rep_part in by_rep:  # forwarded once, from partition 0
                yield from rep_part.observe_from(0, offsets[0], event)
        else:
            customer = getattr(event, "customer_id", None) or ""
            sources = (partition_for(customer, partitions),)
            if by_customer:
                part = by_customer[sources[0]]
                yield from part.observe(event)
                links, catalog = part.links, part.engine.catalog
            elif isinstance(event, Customer):
                catalog.update(event)
            if by_rep and event.type in rep_types:
                rep = rep_key(event, catalog, links)
                if rep is not None:
                    yield from by_rep[partition_for(rep, rep_partitions)].observe_from(
                        sources[0], offsets[sources[0]], for_rep(event, rep))
        for source in sources:  # what a worker reports after each batch
            offsets[source] += 1
            for rep_part in by_rep:
                yield from rep_part.advance(source, event.occurred_at)


def _settle(by_customer: list[PartitionEngine], by_rep: list[PartitionEngine],
            touched: set[int]) -> Iterator[Alert]:
    """Exchange population updates until no partition can learn more of what it holds;
    then forward what was learned by rep, and each partition's progress."""
    while touched:
        for source in sorted(touched):
            part = by_customer[source]
            exchange = part.population
            assert exchange is not None
            items, complete = exchange.take_outgoing(), part.complete()
            for other in by_customer:
                if other is not part:
                    other.population.receive(source, items, complete)  # type: ignore[union-attr]
        touched = set()
        for q, part in enumerate(by_customer):
            if part.held or part.waiting:
                before = (len(part.held), part.next_tick)
                yield from part.release()
                if (len(part.held), part.next_tick) != before:
                    touched.add(q)
    rep_partitions = len(by_rep)
    for source, part in enumerate(by_customer):
        forwards, part.forwards = part.forwards or [], []
        for offset, event, rep in forwards:
            if not by_rep:
                continue
            if broadcast(event):
                if source == 0:  # forwarded once, from partition 0
                    for rep_part in by_rep:
                        yield from rep_part.observe_from(0, offset, event)
            elif rep is not None:
                yield from by_rep[partition_for(rep, rep_partitions)].observe_from(
                    source, offset, for_rep(event, rep))
        if part.reached is not None:
            for rep_part in by_rep:
                yield from rep_part.advance(source, part.reached)
