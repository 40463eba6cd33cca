"""The embedded run: events through one engine in event time, findings through policy
(`sia replay`, `sia evaluate` and the benches run it; `partitions.replay_partitioned` is
the same run split by customer partition, as Kafka workers run it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from sia.engine.driver import Driver
from sia.engine.engine import Engine
from sia.events.models import Event
from sia.findings import Finding
from sia.policy import Alert, Policy


def _chunks(events: Iterator[Event], size: int) -> Iterator[list[Event]]:
    chunk: list[Event] = []
    for event in events:
        chunk.append(event)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def alerts_of(events: Iterable[Event], *, engine: Engine, policy: Policy,
              chunk: int = 1, on_finding: Callable[[Finding], None] | None = None
              ) -> Iterator[Alert]:
    """The embedded run: events through the engine in event time (a tick at every day
    boundary, and one after the last event), findings through policy; alerts as they
    come. `chunk` events are learned together (the same findings; see
    sia/engine/driver.py): 1 yields each alert right after its event."""
    driver = Driver(engine)
    for events_ in _chunks(iter(events), chunk):
        for finding in driver.feed(events_):
            if on_finding is not None:
                on_finding(finding)
            alert = policy.admit(finding)
            if alert is not None:
                yield alert
    for finding in driver.finish():
        if on_finding is not None:
            on_finding(finding)
        alert = policy.admit(finding)
        if alert is not None:
            yield alert
