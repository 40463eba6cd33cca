"""Offsets a partition's state skipped: found by the checkpoint's offset, repaired by a seek.

A partition's checkpoint records the last input offset it covers, so the next message
it learns must be the one right after. faust-streaming can commit past messages no agent
processed: it acks a message it drops because it was fetched in an earlier consumer
generation (`Stream._py_aiter`, upstream issues #527 and #596). The worker that next owns
the partition is then handed messages from that commit, beyond its checkpoint, and
without this check would never learn the ones in between.

So a message more than one offset past the state is not learned. The consumer seeks
back to the first offset the state lacks, and the messages from there arrive again.
Until they do, messages fetched before the seek (past the one that revealed the gap) are
dropped too. A message at or before that one can still arrive ahead of the seek: Faust
seeks to the committed offset itself when it takes a partition over, and the same
message is then fetched twice (seen in a kill -9 test: offset 8 came again after the
seek back to 0, and 0 to 7 were taken for gone). So the consumer seeks again, up to
`SEEK_ATTEMPTS` seeks in all. Only if the first message is still past the state after
that do the offsets in between hold no records any more (deleted by retention, or
transaction markers): the worker logs how many and carries on from there.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("sia.worker")
SEEK_ATTEMPTS = 3  # seeks back to one offset before its messages are taken for gone


class OffsetGaps:
    """Decides, message by message, whether a partition's state can learn it next."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        counts.setdefault("rewinds", 0)
        counts.setdefault("unreadable_offsets", 0)
        # topic partition -> (first offset the state lacks, the offset that made the
        # last seek back to it, seeks so far)
        self._rewinding: dict[Any, tuple[int, int, int]] = {}
        self.seeks: dict[Any, int] = {}  # topic partition -> offset to seek to, pending

    def follows(self, message: Any, last: int | None) -> bool:
        """True when `message` may be learned by a state that covers offsets up to `last`
        (None: a new state that may start anywhere)."""
        tp = message.tp
        if last is None:
            return True
        expected = last + 1
        if message.offset == expected:
            self._rewinding.pop(tp, None)
            return True
        rewinding = self._rewinding.get(tp)
        if rewinding is None or rewinding[0] != expected:
            self._rewinding[tp] = (expected, message.offset, 1)
            self.seeks[tp] = expected
            self.counts["rewinds"] += 1
            log.warning("%s[%d]: offset %d arrived, but the state covers offsets up to "
                        "%d only: seeking back to %d", message.topic, message.partition,
                        message.offset, last, expected)  # -1: none yet
            return False
        _, seeking_after, attempts = rewinding
        if message.offset > seeking_after:
            return False  # fetched before the seek
        if attempts < SEEK_ATTEMPTS:  # fetched before the seek too, or the offsets are gone
            self._rewinding[tp] = (expected, message.offset, attempts + 1)
            self.seeks[tp] = expected
            log.warning("%s[%d]: offset %d arrived again after the seek back to %d: "
                        "seeking back again (%d of %d)", message.topic, message.partition,
                        message.offset, expected, attempts + 1, SEEK_ATTEMPTS)
            return False
        del self._rewinding[tp]
        missing = message.offset - expected
        self.counts["unreadable_offsets"] += missing
        log.error("%s[%d]: offsets %d to %d hold no records any more (retention, or "
                  "transaction markers): %d offsets never learned, carrying on from %d",
                  message.topic, message.partition, expected, message.offset - 1, missing,
                  message.offset)
        return True

    def take_seeks(self) -> dict[Any, int]:
        """The seeks the last messages asked for; each is asked for once."""
        seeks, self.seeks = self.seeks, {}
        return seeks
