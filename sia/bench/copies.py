"""A customer base N times as large, made from a real one: every event N times, each
copy with customers, orders and other records of its own ("-0", "-1", ...), the same
products and reps. The rhythm of each copy is the original's, so the figures of a
bench on it say what size costs, not what other data does.

`sia bench --preview --copies 17` on online retail is 514,420 events: issue 15's
500,000-event goal for a learning-parameter preview.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sia.events.models import Event

# ids shared by every copy: the catalogue and the sales team are the same
SHARED_IDS = frozenset({"product_id", "rep_id", "owner_rep_id", "manager_id"})


def copied(events: Iterable[Event], copies: int) -> Iterator[Event]:
    """Each event `copies` times in a row (so time order is kept), each copy's own ids
    suffixed with its number; `copies` 1 gives the events as they are."""
    if copies < 1:
        raise ValueError(f"copies must be at least 1, got {copies}")
    for event in events:
        if copies == 1:
            yield event
            continue
        own = [name for name, value in event if name.endswith("_id")
               and name not in SHARED_IDS and isinstance(value, str)]
        for k in range(copies):
            yield event.model_copy(update={name: f"{getattr(event, name)}-{k}"
                                           for name in own})
