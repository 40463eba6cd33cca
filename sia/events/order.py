"""A file of history in time order, whatever order it was written in.

A stream is learned in time order: the engine refuses an event dated more than a week
behind the newest one before it (sia/engine/admission.py). An export of history often
comes in another order (CDNOW's and many CRMs' files are sorted by customer), and
replayed as it is, nearly every event is refused as late. `in_time_order` sorts such a
file before it is learned (`sia replay --sort`, `sia evaluate`).

Reference records (customers, products, reps) travel with the event that follows them in
the file, so a customer's record still comes before that customer's first order when a
by-customer file is sorted; records after the last event stay at the end. A file in time
order already comes out as it went in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TypeVar

from sia.events.models import Customer, Event, Product, Rep

E = TypeVar("E", bound=Event)
REFERENCE = (Customer, Product, Rep)


def in_time_order(events: Iterable[E], max_late: timedelta) -> tuple[list[E], int]:
    """The events in time order (stable: ties keep the file's order), and how many of
    them a stream in the file's order would refuse as late (dated more than `max_late`
    behind the newest event before them; reference records are never late)."""
    groups: list[tuple[float, int, list[E]]] = []
    waiting: list[E] = []
    late = 0
    newest = None
    for event in events:
        waiting.append(event)
        if isinstance(event, REFERENCE):
            continue
        at = event.occurred_at
        if newest is not None and newest - at > max_late:
            late += 1
        if newest is None or at > newest:
            newest = at
        groups.append((at.timestamp(), len(groups), waiting))
        waiting = []
    groups.sort(key=lambda group: (group[0], group[1]))
    ordered = [event for _, _, group in groups for event in group]
    return ordered + waiting, late
