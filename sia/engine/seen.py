"""Idempotency: remember event ids for a while so a redelivered event is processed once."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta


class SeenEvents:
    """Event ids seen within `retention` of event time (bounded memory, deterministic)."""

    def __init__(self, retention: timedelta = timedelta(days=35)) -> None:
        self.retention = retention
        self._ids: OrderedDict[str, datetime] = OrderedDict()
        self._newest: datetime | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def check_and_add(self, event_id: str, at: datetime) -> bool:
        """True when the id is new (and remember it); False for a duplicate."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = at
        if self._newest is None or at > self._newest:
            self._newest = at
            self._forget_older_than(at - self.retention)
        return True

    def _forget_older_than(self, cutoff: datetime) -> None:
        ids = self._ids
        while ids:
            oldest_id = next(iter(ids))
            if ids[oldest_id] >= cutoff:
                break
            del ids[oldest_id]
