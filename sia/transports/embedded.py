"""Embedded transport: one process, events from a file or iterator, alerts into SQLite.

events -> engine (detectors) -> findings -> policy -> alerts (stored first) -> notifiers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sia.alerts.store import AlertStore
from sia.engine.engine import FILE_CHUNK, Engine, replay
from sia.events.models import Event
from sia.events.reader import Reject, RejectSink
from sia.policy import Alert, Policy


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

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary."""
        return {"events": self.events, "rejects": self.rejects,
                "duplicates": self.duplicates, "findings": dict(self.findings),
                "alerts": dict(self.alerts), "stored": self.stored,
                "suppressed": self.suppressed}


def _valid_events(records: Iterable[Event | Reject], sink: RejectSink,
                  summary: RunSummary, on_record: Callable[[], None] | None) -> Iterable[Event]:
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
        on_record: Callable[[], None] | None = None,
        tick_every: timedelta = timedelta(days=1), batch: int = 500,
        chunk: int = FILE_CHUNK) -> RunSummary:
    """Replay records through engine and policy; store alerts in batches, before notifying.
    Events are learned `chunk` at a time (the same findings; see `replay`): pass 1 for
    a live stream whose alerts must not wait for the next events."""
    summary = RunSummary()
    pending: list[Alert] = []

    def flush() -> None:
        if store is not None and pending:
            summary.stored += store.add(pending)
        if on_alert is not None:
            for alert in pending:
                on_alert(alert)
        pending.clear()

    for finding in replay(engine, _valid_events(records, sink, summary, on_record),
                          tick_every=tick_every, chunk=chunk):
        summary.findings[finding.detector] += 1
        alert = policy.admit(finding)
        if alert is not None:
            summary.alerts[finding.detector] += 1
            pending.append(alert)
            if len(pending) >= batch:
                flush()
    flush()
    summary.duplicates = engine.duplicates
    summary.suppressed = dict(policy.suppressed)
    return summary
