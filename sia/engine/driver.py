"""Drive an engine with event time, one batch at a time: the clock ticks at every
boundary the stream crosses, as in a replay, whether the events come from a file in
one go or from a live journal a few at a time.

The findings do not depend on how the stream is cut into batches: each batch is learned
with `Engine.observe_many`, which gives what `observe` on each event and `tick` at each
boundary in turn would give.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sia.engine.engine import Engine
from sia.events.models import Event
from sia.findings import Finding

DAY = timedelta(days=1)


class Driver:
    """An engine and the next boundary its clock will tick."""

    def __init__(self, engine: Engine, *, tick_every: timedelta = DAY,
                 next_tick: datetime | None = None) -> None:
        if tick_every <= timedelta(0):
            raise ValueError("tick_every must be positive")
        self.engine = engine
        self.tick_every = tick_every
        self.next_tick = next_tick

    def feed(self, events: Sequence[Event]) -> list[Finding]:
        """Learn from events in order, ticking every boundary they cross. An event whose
        time the engine refuses is refused before it ticks anything (`Engine.admitted`):
        one dated 2111 must not move the clock a century."""
        pending: list[Event | datetime] = []
        step = self.tick_every
        for event in self.engine.admitted(events):
            at = event.occurred_at
            if self.next_tick is None:
                self.next_tick = boundary_after(at, step)
            while at >= self.next_tick:
                pending.append(self.next_tick)
                self.next_tick += step
            pending.append(event)
        return self._learn(pending)

    def tick_until(self, now: datetime) -> list[Finding]:
        """Tick every boundary up to `now` (a live clock, with no event to move it)."""
        pending: list[Event | datetime] = []
        while self.next_tick is not None and self.next_tick <= now:
            pending.append(self.next_tick)
            self.next_tick += self.tick_every
        return self._learn(pending)

    def finish(self) -> list[Finding]:
        """The end of a replay: tick the boundary after the last event, once."""
        if self.next_tick is None:
            return []
        pending: list[Event | datetime] = [self.next_tick]
        self.next_tick += self.tick_every
        return self._learn(pending)

    def _learn(self, pending: list[Event | datetime]) -> list[Finding]:
        if not pending:
            return []
        if len(pending) == 1:
            first = pending[0]
            return self.engine.tick(first) if isinstance(first, datetime) \
                else self.engine.observe(first)
        return self.engine.observe_many(pending)


def boundary_after(at: datetime, step: timedelta) -> datetime:
    """The first step boundary (midnight-aligned in the event's zone) after `at`."""
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    boundary = midnight
    while boundary <= at:
        boundary += step
    return boundary
