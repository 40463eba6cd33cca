"""Population models shared by the partitions of a split stream, deterministically.

A detector's population models (what it learns across customers: drift's silence model
and gap prior, for instance) would otherwise be learned by each partition from its own
customers, a hash sample of 1/P of them. Instead each partition learns them from every
partition's customers, the other partitions' at the next tick boundary (a day late):

- a sharing detector passes each step of population learning to `Detector.share`,
  which learns it at once (as one engine does) and puts it in the partition's
  `Outbox`, stamped with the boundary it comes before (updates made between boundary
  B and the next are stamped with the next);
- what falls due at a boundary B itself (`Detector.learn_at_tick`: drift's silences
  and orders that ran their course) is learned before any partition ticks B, and
  stamped B + AT_TICK. A partition makes it on reaching B, before it says it is
  complete through B; with several partitions it learns its own too only with the
  others' (the outbox defers them);
- partitions send each other their updates and how far they are `complete`: through B
  when they have made every update that belongs to B (they have learned every event
  before B and are about to tick B, or ticked it already);
- before a partition ticks B, it waits until every partition is complete through B,
  then applies the updates that belong to B and it has not learned yet, in one order
  (stamp, source, sequence): every partition's updates of the day first, then every
  partition's at-tick updates.

So every partition has learned the same updates at each boundary, whatever order it
learned them in, and in an order that depends only on the stream, however workers
interleave, crash or rebalance: its own day's as they came, the others' day's at the
boundary, then everyone's at-tick learning. That follows one engine as closely as the
exchange allows, which matters: drift's silence model, an online logistic regression
with a constant step, leans towards what it learned last. One engine ends each tick's
learning with the day's silences that ran their course (a block of "lost" labels) and
then predicts; partitions that ordered it otherwise made up to a fifth fewer overdue
alerts than one engine on online retail (docs/SCALE_OUT.md), and deferring every
update to the boundary left one partition with 531 of 2,398. With one partition,
everything is learned at once: exactly the embedded engine. An update sent twice
(after a crash, a partition makes the same updates again from its checkpoint) is
recognised by its sequence number. The cost: a partition waits at each boundary for
the slowest partition, and holds the events that arrive meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# an update as it travels: (stamp, sequence, detector name, update)
Item = tuple[int, int, str, tuple[Any, ...]]
# what a partition learns at boundary B itself (`Detector.learn_at_tick`) is stamped
# B + AT_TICK: it belongs to B, and sorts after every partition's updates made before B
AT_TICK = 1


class Outbox(list[Item]):
    """A partition's updates not yet sent, stamped as `Detector.share` makes them."""

    # True while the updates made are learned later, with the other partitions' (a class
    # default, so that outboxes checkpointed before it existed restore)
    defer = False

    def __init__(self) -> None:
        super().__init__()
        self.stamp = 0  # the boundary (epoch seconds) the updates made now come before
        self.seq = 0  # updates made so far

    def append(self, item: Any) -> None:
        """`item` is (detector name, update), from `Detector.share`."""
        self.seq += 1
        super().append((self.stamp, self.seq, item[0], item[1]))


class PopulationExchange:
    """One partition's share of the exchange: its outbox, what it received from the
    others, and how complete each partition is."""

    # sources whose next sequence may jump: their earlier updates are gone for good
    # (a class default, so that exchanges checkpointed before it existed restore)
    gone: frozenset[int] = frozenset()
    lost = 0  # updates of other partitions never received (see `updates_lost`)

    def __init__(self, source: int, sources: int) -> None:
        self.source = source
        self.sources = sources
        self.outbox = Outbox()
        self._inbox: list[tuple[int, int, int, str, tuple[Any, ...]]] = []
        self._next_seq = [1] * sources  # per source: the first sequence not yet received
        self.complete: list[int | None] = [None] * sources  # per source: boundary
        self.offset = -1  # the last message of the transport received (set by it)
        self.sent_complete: int | None = None  # the completeness last sent (by it)

    def take_outgoing(self) -> list[Item]:
        """The updates made since the last call, to send to every other partition (this
        one learned them already)."""
        items = list(self.outbox)
        self.outbox.clear()
        return items

    def receive(self, source: int, items: Iterable[Item], complete: int | None) -> None:
        """Updates and the completeness of partition `source` (repeats are dropped)."""
        if source == self.source:
            return  # own updates join the inbox when taken
        self._receive_items(source, items)
        self.mark_complete(source, complete)

    def defer_own(self, stamp: int) -> None:
        """Learn this partition's own updates stamped `stamp` (made while the outbox
        deferred them) with the others', in the same order."""
        self._inbox.extend((at, self.source, seq, detector, update)
                           for at, seq, detector, update in self.outbox if at == stamp)

    def updates_lost(self) -> None:
        """The transport could not read some messages again (retention deleted them):
        each other partition's next sequence may jump once, past the updates lost."""
        self.gone = frozenset(s for s in range(self.sources) if s != self.source)

    def _receive_items(self, source: int, items: Iterable[Item]) -> None:
        expected = self._next_seq[source]
        for stamp, seq, detector, update in items:
            if seq < expected:
                continue  # sent again after a crash
            if seq != expected:
                if source not in self.gone:
                    raise ValueError(f"population updates of partition {source}: "
                                     f"sequence {seq} arrived, {expected} expected")
                self.lost += seq - expected
                expected = seq
            if self.gone:
                self.gone -= {source}
            self._inbox.append((stamp, source, seq, detector, update))
            expected += 1
        self._next_seq[source] = expected

    def mark_complete(self, source: int, boundary: int | None) -> None:
        """Partition `source` has made every update stamped up to `boundary`."""
        if boundary is not None:
            known = self.complete[source]
            self.complete[source] = boundary if known is None else max(known, boundary)

    def ready(self, boundary: int) -> bool:
        """True when every partition is complete through `boundary`."""
        return all(c is not None and c >= boundary for c in self.complete)

    def behind(self, boundary: int) -> list[tuple[int, int | None]]:
        """(partition, how complete it is: None before it said anything) for each
        partition not complete through `boundary` yet."""
        return [(source, c) for source, c in enumerate(self.complete)
                if c is None or c < boundary]

    def apply_through(self, boundary: int, detectors: Mapping[str, Any]) -> int:
        """Apply every update stamped up to `boundary`, in (stamp, source, sequence)
        order, to the detectors by name; how many."""
        last = boundary + AT_TICK
        due = [item for item in self._inbox if item[0] <= last]
        if not due:
            return 0
        self._inbox = [item for item in self._inbox if item[0] > last]
        due.sort(key=lambda item: (item[0], item[1], item[2]))
        for _, _, _, name, update in due:
            detectors[name].learn_population(update)
        return len(due)
