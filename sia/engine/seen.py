"""Idempotency: remember event ids for a while so a redelivered event is processed once,
and one that comes back with other content is told apart (a conflict)."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

# how long after its event time an id is remembered: a CRM re-sending last year's orders
# (a year-end resync) is recognised. A service's journal keeps ids forever; this bounds
# the memory of an engine driven without one (`sia replay --state`, Kafka workers).
RETENTION = timedelta(days=400)


class SeenEvents:
    """Event ids seen within `retention` of event time (bounded memory, deterministic),
    with a digest of each event's content when one is given (`add`)."""

    def __init__(self, retention: timedelta = RETENTION) -> None:
        self.retention = retention
        self._ids: OrderedDict[str, datetime] = OrderedDict()
        self._newest: datetime | None = None
        self._digests: dict[str, int] = {}

    def resumed(self, retention: timedelta) -> SeenEvents:
        """These ids, restored from saved state, kept for `retention` from now on (the
        one asked for now applies; state saved before digests has none)."""
        self.retention = retention
        vars(self).setdefault("_digests", {})
        return self

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def differs(self, event_id: str, digest: int) -> bool:
        """True when `event_id` was seen with a digest other than `digest` (a conflict);
        False when it was not seen, or seen without a digest (snapshots from before
        digests), or with the same one."""
        was = self._digests.get(event_id)
        return was is not None and was != digest

    def check_and_add(self, event_id: str, at: datetime, digest: int | None = None) -> bool:
        """True when the id is new (and remember it, with `digest`); False for a repeat."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = at
        if digest is not None:
            self._digests[event_id] = digest
        if self._newest is None or at > self._newest:
            self._newest = at
            self._forget_older_than(at - self.retention)
        return True

    def _forget_older_than(self, cutoff: datetime) -> None:
        ids = self._ids
        digests = self._digests
        while ids:
            oldest_id = next(iter(ids))
            if ids[oldest_id] >= cutoff:
                break
            del ids[oldest_id]
            digests.pop(oldest_id, None)
