"""The transport-free core: observe(event) and tick(now) return findings.

The engine deduplicates events by id, keeps reference data, dispatches each event to
the detectors that handle its type, and moves their clock. It knows nothing about
Kafka, files or HTTP: transports drive it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sia.detectors.base import Detector
from sia.engine import snapshot
from sia.engine.catalog import Catalog
from sia.engine.seen import SeenEvents
from sia.events.models import Customer, Event, Product, Rep
from sia.findings import Finding

_REFERENCE = (Customer, Product, Rep)
_TICK = "tick"  # a run's item that is a time the clock reaches, not an event
# events learned together when replaying a file (see `replay`): large enough that each
# detector's data stays hot, small enough that findings follow their events closely
FILE_CHUNK = 2048


class Engine:
    """Online detection over one ordered stream of events."""

    def __init__(self, detectors: Sequence[Detector[Any]], *,
                 dedup_retention: timedelta = timedelta(days=35)) -> None:
        names = [d.name for d in detectors]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate detectors in {names}")
        self.detectors = list(detectors)
        self.catalog = Catalog()
        self.seen = SeenEvents(dedup_retention)
        self.clock: datetime | None = None  # newest event or tick time
        self.duplicates = 0
        self.observed = 0
        route: dict[str, list[Detector[Any]]] = {}
        for detector in self.detectors:
            for event_type in detector.handles:
                route.setdefault(event_type, []).append(detector)
        self._route: dict[str, tuple[Detector[Any], ...]] = {
            event_type: tuple(handlers) for event_type, handlers in route.items()}

    # Context protocol, handed to detectors
    def scope_of(self, customer_id: str) -> tuple[str | None, str | None]:
        """(team, segment) of a customer."""
        return self.catalog.team_of(customer_id), self.catalog.segment_of(customer_id)

    def observe(self, event: Event) -> list[Finding]:
        """Learn from one event; a repeated event_id is ignored."""
        if not self.seen.check_and_add(event.event_id, event.occurred_at):
            self.duplicates += 1
            return []
        self.observed += 1
        at = event.occurred_at
        if self.clock is None or at > self.clock:
            self.clock = at
        if isinstance(event, _REFERENCE):
            self.catalog.update(event)
        findings: list[Finding] = []
        for detector in self._route.get(event.type, ()):
            found = detector.observe(event, self)
            if found:  # most events reveal nothing: skip the extend
                findings += found
        return findings

    def observe_many(self, items: Sequence[Event | datetime]) -> list[Finding]:
        """Learn from events, and let the clock reach each time between them (a tick), in
        order: the same findings, in the same order, as `observe` on each event and
        `tick` at each time in turn. But each detector takes its events and ticks of a
        run one after another, keeping its own data hot instead of eight detectors
        alternating event by event. Exact because a detector sees only its own state
        and the reference data (`Context`), and a reference record ends a run."""
        findings: list[Finding] = []
        run: list[Event | datetime] = []
        for item in items:
            if isinstance(item, datetime):
                if self.clock is None or item > self.clock:
                    self.clock = item
                run.append(item)
                continue
            if isinstance(item, _REFERENCE):
                findings += self._observe_run(run)
                run = []
                findings += self.observe(item)
                continue
            if not self.seen.check_and_add(item.event_id, item.occurred_at):
                self.duplicates += 1
                continue
            self.observed += 1
            if self.clock is None or item.occurred_at > self.clock:
                self.clock = item.occurred_at
            run.append(item)
        findings += self._observe_run(run)
        return findings

    def _observe_run(self, run: Sequence[Event | datetime]) -> list[Finding]:
        """Detector after detector over a run of new, non-reference events and tick
        times; findings put back in run order, then in the order of the detectors."""
        if not run:
            return []
        kinds = [_TICK if isinstance(item, datetime) else item.type for item in run]
        found: list[tuple[int, int, list[Finding]]] = []
        for rank, detector in enumerate(self.detectors):
            handles, observe, tick = detector.handles, detector.observe, detector.tick
            for i, kind in enumerate(kinds):
                if kind is _TICK:
                    out = tick(run[i], self)  # type: ignore[arg-type]
                elif kind in handles:
                    out = observe(run[i], self)  # type: ignore[arg-type]
                else:
                    continue
                if out:
                    found.append((i, rank, out))
        found.sort(key=lambda item: (item[0], item[1]))
        return [f for _, _, out in found for f in out]

    def learn_at_tick(self, now: datetime) -> None:
        """What detectors learn when the clock reaches `now`, before they tick it."""
        for detector in self.detectors:
            detector.learn_at_tick(now, self)

    def tick(self, now: datetime) -> list[Finding]:
        """Let the clock reach `now` (event time in replays, wall time live)."""
        if self.clock is None or now > self.clock:
            self.clock = now
        findings: list[Finding] = []
        for detector in self.detectors:
            findings.extend(detector.tick(now, self))
        return findings

    # snapshots
    def detector_params(self) -> dict[str, dict[str, Any]]:
        """Thresholds of every detector, as recorded in snapshots."""
        return {d.name: dataclasses.asdict(d.params) for d in self.detectors}

    def snapshot(self) -> bytes:
        """Everything learned so far, with the versions it was made with."""
        state = {
            "detectors": {d.name: d for d in self.detectors},
            "catalog": self.catalog,
            "seen": self.seen,
            "clock": self.clock,
            "counts": (self.observed, self.duplicates),
        }
        return snapshot.dump(state, detectors=self.detector_params())

    @classmethod
    def restore(cls, blob: bytes, *, detectors: Sequence[Detector[Any]],
                dedup_retention: timedelta = timedelta(days=35)) -> Engine:
        """An engine that continues where the snapshot left off.

        `detectors` are the ones configured now: the snapshot must hold the same set,
        and their current thresholds replace the ones the snapshot was made with (what
        was learned is kept; what a manager tuned since takes effect).
        """
        state = snapshot.load(blob, detectors=[d.name for d in detectors])
        engine = cls.from_learned(state["detectors"], detectors,
                                  dedup_retention=dedup_retention)
        engine.catalog = state["catalog"]
        engine.seen = state["seen"]
        engine.seen.retention = dedup_retention  # the retention asked for now applies
        engine.clock = state["clock"]
        engine.observed, engine.duplicates = state["counts"]
        return engine

    @classmethod
    def from_learned(cls, restored: dict[str, Detector[Any]],
                     detectors: Sequence[Detector[Any]], *,
                     dedup_retention: timedelta = timedelta(days=35)) -> Engine:
        """An engine of restored detectors, with the thresholds configured now."""
        for configured in detectors:
            learned = restored[configured.name]
            for key in sorted(configured.global_params):
                was, now = getattr(learned.params, key), getattr(configured.params, key)
                if was != now:
                    raise snapshot.SnapshotError(
                        f"{configured.name}.{key} changed from {was} to {now}; it shapes what "
                        "was learned across all customers, so replay the events to rebuild")
            learned.params = configured.params
            learned.set_overrides(configured.overrides)
        return cls([restored[d.name] for d in detectors], dedup_retention=dedup_retention)


def replay(engine: Engine, events: Iterable[Event], *,
           tick_every: timedelta = timedelta(days=1),
           final_tick: bool = True, chunk: int = 1) -> Iterator[Finding]:
    """Drive an engine with event time: tick at each boundary the stream crosses, and
    (unless `final_tick` is False, as in a stream that has no end) once after the last
    event.

    With `chunk` above 1, up to that many events, with the ticks between them, are
    learned together (`Engine.observe_many`): the same findings in the same order,
    faster, but a finding comes out only when its chunk is complete, so a live stream
    keeps 1.
    """
    next_tick: datetime | None = None
    pending: list[Event | datetime] = []
    count = 0
    for event in events:
        at = event.occurred_at
        if next_tick is None:
            next_tick = _boundary_after(at, tick_every)
        if at >= next_tick and chunk == 1:
            yield from _learn(engine, pending)
        while at >= next_tick:
            if chunk == 1:
                yield from engine.tick(next_tick)
            else:
                pending.append(next_tick)
            next_tick += tick_every
        pending.append(event)
        count += 1
        if count >= chunk:
            yield from _learn(engine, pending)
            count = 0
    if next_tick is not None and final_tick:
        pending.append(next_tick)
    yield from _learn(engine, pending)


def _learn(engine: Engine, pending: list[Event | datetime]) -> list[Finding]:
    """What the pending events and ticks reveal; empties the list."""
    if not pending:
        return []
    first = pending[0]
    if len(pending) == 1:
        found = engine.tick(first) if isinstance(first, datetime) else engine.observe(first)
    else:
        found = engine.observe_many(pending)
    pending.clear()
    return found


def _boundary_after(at: datetime, step: timedelta) -> datetime:
    """The first step boundary (midnight-aligned in the event's zone) after `at`."""
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    boundary = midnight
    while boundary <= at:
        boundary += step
    return boundary
