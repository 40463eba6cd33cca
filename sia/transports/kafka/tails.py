"""Messages read but never learned at the end of a partition: found by watching, repaired
by a seek.

`OffsetGaps` finds offsets a partition's state skipped when a later message arrives.
Nothing arrives after the last messages of a partition that has gone quiet, and that is
exactly where faust-streaming can lose some: at a rebalance it drops (and acks, so the
group commits past them) messages fetched in the previous consumer generation. Seen
with shared population models: a worker learned a population partition's messages in
an agent that does not checkpoint, the partition moved at a rebalance and came back
from an older checkpoint, and the group's committed offset was already past them. Every
partition then waited for updates that would never be read again, with no later message
to reveal the gap.

So the worker's clock looks at each input partition it owns: when the consumer has read
past what the partition's state covers, and neither has moved since the last look (30 s
earlier), those messages will not reach the agent. The consumer seeks back to the first
offset the state lacks. A partition that is only slow (a batch longer than a look
apart) is read again from there, and what it had learned is skipped by offset.
"""

from __future__ import annotations

from typing import Any


class TailWatch:
    """Remembers, per topic partition, (offset covered, offset read) at the last look."""

    def __init__(self) -> None:
        self._last: dict[Any, tuple[int, int]] = {}

    def look(self, tp: Any, covered: int, read: int | None) -> int | None:
        """The offset to seek back to when the consumer has read past `covered` (the last
        offset the state has learned, -1 for none) and neither has moved since the last
        look; else None."""
        if read is None or read <= covered:
            self._last.pop(tp, None)
            return None
        seen = self._last.get(tp)
        if seen != (covered, read):
            self._last[tp] = (covered, read)
            return None
        del self._last[tp]
        return covered + 1

    def forget(self, tps: Any) -> None:
        """Partitions no longer owned."""
        for tp in tps:
            self._last.pop(tp, None)
