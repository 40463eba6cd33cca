"""Event-time merge of several source partitions into one deterministic order.

Rep-level detectors read a stream repartitioned by rep. Its events come from every
customer partition, and how those interleave depends on which worker processes which
partition, how fast, and on crashes. Rep-level results depend on event order (a rep's
week is closed when the clock passes it), so the rep stream is merged back into event
time before detectors see it:

- every forwarded event carries its source partition and its offset there;
- each source also sends its progress (the latest event time it has reached);
- the watermark is the lowest progress over all sources; an event is released once its
  time is below the watermark, in (time, source, offset) order.

Each source's events are in time order (importers write sorted files, and a partition
keeps its order), so an event below the watermark can no longer be preceded by one not
yet seen: the released sequence is the global event-time order, whatever the
interleaving. An event that arrives below the watermark anyway (a source out of order)
is released at once and counted as late. One source needs no merging: its events are
released as they come.
"""

from __future__ import annotations

import heapq
import itertools
from datetime import datetime

from sia.events.models import Event

Entry = tuple[datetime, int, int, int, Event]


class EventTimeMerge:
    """Buffers events of `sources` partitions until every source has passed their time."""

    def __init__(self, sources: int) -> None:
        if sources < 1:
            raise ValueError("a merge needs at least one source")
        self.sources = sources
        self.progress: dict[int, datetime] = {}
        self.pending: list[Entry] = []
        self.late = 0
        self._ties = itertools.count()

    @property
    def watermark(self) -> datetime | None:
        """Events before this time have all arrived; None until every source reported."""
        if len(self.progress) < self.sources:
            return None
        return min(self.progress.values())

    def add(self, source: int, offset: int, event: Event) -> list[Event]:
        """Take an event from `source` (at `offset` there); what is ready now, in order."""
        if self.sources == 1:
            return [event]
        at = event.occurred_at
        mark = self.watermark
        if mark is not None and at < mark:
            self.late += 1
            return [event]
        heapq.heappush(self.pending, (at, source, offset, next(self._ties), event))
        return self.advance(source, at)

    def advance(self, source: int, reached: datetime) -> list[Event]:
        """`source` has reached `reached` in event time; what is ready now, in order."""
        if not 0 <= source < self.sources:
            raise ValueError(f"source partition {source} is not in 0..{self.sources - 1}")
        known = self.progress.get(source)
        if known is None or reached > known:
            self.progress[source] = reached
        mark = self.watermark
        ready: list[Event] = []
        while self.pending and mark is not None and self.pending[0][0] < mark:
            ready.append(heapq.heappop(self.pending)[-1])
        return ready

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_ties"] = next(self._ties)  # itertools.count is not picklable everywhere
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        ties = state.pop("_ties")
        self.__dict__.update(state)
        self._ties = itertools.count(int(ties))  # type: ignore[call-overload]
