"""Replaying events in one process: a file (or any iterator) through engine and policy
into the store, with learned state resumed from and saved to a snapshot.

events -> engine (detectors) -> findings -> policy -> alerts (stored first) -> notifiers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sia.alerts.store import AlertStore
from sia.detectors.base import Detector
from sia.engine.admission import TimeLimits
from sia.engine.embedded import alerts_of
from sia.engine.engine import FILE_CHUNK, Engine
from sia.events.models import Event
from sia.events.order import in_time_order
from sia.events.reader import Reject, RejectSink
from sia.findings import Finding
from sia.policy import Alert, Policy
from sia.service.state import state_lock, write_atomically


@dataclass
class RunSummary:
    """What a run read, rejected, found and stored."""

    events: int = 0
    rejects: int = 0
    duplicates: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    stored: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)
    late: int = 0  # of the rejects, refused as dated more than max_late behind the stream

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary."""
        return {"events": self.events, "rejects": self.rejects, "late": self.late,
                "duplicates": self.duplicates, "findings": dict(self.findings),
                "alerts": dict(self.alerts), "stored": self.stored,
                "suppressed": self.suppressed}


def _valid_events(records: Iterable[Event | Reject], sink: RejectSink,
                  summary: RunSummary, on_record: Callable[[], None] | None) -> Iterator[Event]:
    for record in records:
        if on_record is not None:
            on_record()
        if isinstance(record, Reject):
            summary.rejects += 1
            sink.add(record)
            continue
        summary.events += 1
        yield record


def run(records: Iterable[Event | Reject], *, engine: Engine, policy: Policy,
        sink: RejectSink, store: AlertStore | None = None,
        on_alert: Callable[[Alert], None] | None = None,
        on_record: Callable[[], None] | None = None, batch: int = 500,
        chunk: int = FILE_CHUNK, source: str = "events") -> RunSummary:
    """Replay records through engine and policy in event time (a tick at every day
    boundary, and one after the last event); store alerts in batches, before notifying.
    Events are learned `chunk` at a time (the same findings; see sia/engine/driver.py):
    pass 1 for a live stream whose alerts must not wait for the next events.

    Events the engine refuses (a time it cannot learn, a detector that raised, an id
    learned before with other content) are kept in `sink` too, as from `source` (the
    line is not known there: the event id names the record), unless the engine has a
    reject hook of its own. `duplicates` counts the repeats of this run."""
    summary = RunSummary()
    pending: list[Alert] = []
    duplicates, own_hook = engine.duplicates, engine.on_reject

    def refused(event: Event, reason: str) -> None:
        summary.rejects += 1
        clock = engine.stream_clock
        if clock is not None and clock - event.occurred_at > engine.time_limits.max_late:
            summary.late += 1
        sink.add(Reject(source, 0, reason, event.model_dump_json(), event.event_id))

    if own_hook is None:
        engine.on_reject = refused

    def flush() -> None:
        if store is not None and pending:
            summary.stored += store.add(pending, owner=lambda a: engine.catalog.owner_of(
                a.finding))
        if on_alert is not None:
            for alert in pending:
                on_alert(alert)
        pending.clear()

    def found(finding: Finding) -> None:
        summary.findings[finding.detector] += 1

    try:
        for alert in alerts_of(_valid_events(records, sink, summary, on_record),
                               engine=engine, policy=policy, chunk=chunk, on_finding=found):
            summary.alerts[alert.finding.detector] += 1
            pending.append(alert)
            if len(pending) >= batch:
                flush()
        flush()
    finally:
        engine.on_reject = own_hook
    summary.duplicates = engine.duplicates - duplicates
    summary.suppressed = dict(policy.suppressed)
    return summary


def time_sorted(records: Iterable[Event | Reject], max_late: timedelta
                ) -> list[Event | Reject]:
    """A file's records with its events in time order (sia/events/order.py); bad records
    first, as they are kept whatever the order."""
    rejects: list[Event | Reject] = []
    events: list[Event] = []
    for record in records:
        if isinstance(record, Reject):
            rejects.append(record)
        else:
            events.append(record)
    return rejects + list(in_time_order(events, max_late)[0])


def replay(records: Iterable[Event | Reject], *, detectors: list[Detector[Any]],
           policy: Policy, store: AlertStore, sink: RejectSink, state: Path | None = None,
           chunk: int = FILE_CHUNK, source: str = "events", sort: bool = False
           ) -> RunSummary:
    """`sia replay`: resume learned state from `state` (if it exists), replay, save it.
    `sort`: learn the events in time order whatever their order in the file (held in
    memory; see sia/events/order.py).

    The snapshot is locked for the whole run (a second replay on it is refused rather
    than one of them losing the other's events) and replaced atomically at the end. Raises
    SnapshotError for a snapshot that cannot be resumed, Locked when it is in use.
    """
    if sort:
        records = time_sorted(records, TimeLimits().max_late)
    if state is None:
        return _replay(records, Engine(detectors), policy, store, sink, chunk, source)
    with state_lock(state):
        engine = Engine.restore(state.read_bytes(), detectors=detectors) if state.exists() \
            else Engine(detectors)
        summary = _replay(records, engine, policy, store, sink, chunk, source)
        write_atomically(state, engine.snapshot())
        return summary


def _replay(records: Iterable[Event | Reject], engine: Engine, policy: Policy,
            store: AlertStore, sink: RejectSink, chunk: int, source: str) -> RunSummary:
    policy.remember(store.recent_alerts())
    return run(records, engine=engine, policy=policy, sink=sink, store=store, chunk=chunk,
               source=source)
