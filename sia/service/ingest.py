"""Receive events from a CRM: validate every record, answer for each one.

Every record is validated with the same contract as `sia replay` (sia/events/models.py),
then checked against the clock: dated more than `max_ahead` past the wall clock, or
(except reference data, where the newest record simply wins) more than `max_late`
before the newest event accepted so far, it is refused with the times in the reason.
Valid records go to a receiver chosen at start: the journal (one process) or Kafka.
One bad record never fails the others; rejects are kept with their reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from sia.engine.admission import TimeLimits, time_problem
from sia.events.models import EVENT_ADAPTER, Customer, Event, Product, Rep
from sia.events.reader import explain_validation_error
from sia.journal import Accepted, Journal, RejectEntry
from sia.journal.store import CONFLICT, Publish, Refuse

Outcome = Literal["accepted", "duplicate", "rejected"]
_REFERENCE = (Customer, Product, Rep)
_NEVER = timedelta.max


@dataclass(frozen=True, slots=True)
class RecordResult:
    """The answer for one record of a request."""

    index: int
    event_id: str | None
    status: Outcome
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"index": self.index, "event_id": self.event_id, "status": self.status,
                "reason": self.reason}


class ReceiverUnavailable(RuntimeError):
    """The receiver cannot take events now; nothing was recorded (retry later)."""


class Receiver(Protocol):
    """Where valid events go: the journal (embedded) or Kafka (scale-out)."""

    def receive(self, events: Sequence[Event], rejects: Sequence[RejectEntry], *,
                source: str, positions: Sequence[int], refuse: Refuse) -> list[Accepted]:
        """Record the events (durably, before returning) and keep the rejects; one outcome
        per event: accepted, duplicate, conflict, or refused (by `refuse`, with why).
        `positions`: each event's index in its request."""
        ...

    def backlog(self) -> int:
        """Accepted events not yet learned (0 when another process learns them)."""
        ...

    def clock(self) -> datetime | None:
        """The newest event time accepted so far."""
        ...

    def close(self) -> None:
        """Release what it holds (a producer)."""
        ...


class JournalReceiver:
    """Events into the journal; wakes the live engine (or publishes them on) after."""

    def __init__(self, journal: Journal, *, backlog: Callable[[], int] = lambda: 0,
                 wake: Callable[[], None] | None = None, publish: Publish | None = None
                 ) -> None:
        self.journal = journal
        self._backlog = backlog
        self._wake = wake
        self._publish = publish

    def receive(self, events: Sequence[Event], rejects: Sequence[RejectEntry], *,
                source: str, positions: Sequence[int], refuse: Refuse) -> list[Accepted]:
        """Commit to the journal, then wake the engine."""
        outcomes = self.journal.record(events, rejects, source=source, publish=self._publish,
                                       positions=positions, refuse=refuse)
        if self._wake is not None and any(o.status == "accepted" for o in outcomes):
            self._wake()
        return outcomes

    def backlog(self) -> int:
        """Events the live engine has yet to learn."""
        return self._backlog()

    def clock(self) -> datetime | None:
        """Newest accepted event time."""
        return self.journal.clock

    def close(self) -> None:
        """Nothing to release: the journal is closed with the runtime."""


def validate(item: Any, *, index: int, limits: TimeLimits, now: datetime
             ) -> Event | RejectEntry:
    """One record (a decoded JSON value, or text that did not decode) as an event, or a
    reject saying why not: the contract, and not too far ahead of the wall clock."""
    if isinstance(item, _Unreadable):
        return RejectEntry(index, None, f"not valid JSON: {item.reason}", item.text)
    try:
        event = EVENT_ADAPTER.validate_python(item)
    except ValidationError as exc:
        return RejectEntry(index, _event_id_of(item), explain_validation_error(exc), _raw(item))
    ahead = time_problem(event.occurred_at, clock=now, clock_name="the wall clock",
                         limits=TimeLimits(max_ahead=limits.max_ahead, max_late=_NEVER))
    if ahead is not None:
        return RejectEntry(index, event.event_id, ahead, _raw(item))
    return event


def lateness(limits: TimeLimits) -> Refuse:
    """Why a new event is too late for the stream (reference data never is: its newest
    record simply wins)."""
    late = TimeLimits(max_ahead=_NEVER, max_late=limits.max_late)

    def refuse(event: Event, clock: datetime | None) -> str | None:
        if isinstance(event, _REFERENCE):
            return None
        return time_problem(event.occurred_at, clock=clock, limits=late)

    return refuse


@dataclass(frozen=True, slots=True)
class _Unreadable:
    """A line of an NDJSON body that is not JSON."""

    text: str
    reason: str


def unreadable(text: str, reason: str) -> Any:
    """A record that could not be decoded (kept as a reject with this reason)."""
    return _Unreadable(text, reason)


def ingest(items: Sequence[Any], *, receiver: Receiver, source: str, limits: TimeLimits,
           now: datetime | None = None) -> list[RecordResult]:
    """Validate every record and hand the valid ones to the receiver; one result per
    record, in order. A repeat of an accepted event is a duplicate however late it comes;
    a new event too far behind the stream is refused."""
    now = now or datetime.now(UTC)
    events: list[Event] = []
    positions: list[int] = []
    rejects: list[RejectEntry] = []
    results: list[RecordResult | None] = [None] * len(items)
    for index, item in enumerate(items):
        checked = validate(item, index=index, limits=limits, now=now)
        if isinstance(checked, RejectEntry):
            rejects.append(checked)
            results[index] = RecordResult(index, checked.event_id, "rejected", checked.reason)
            continue
        events.append(checked)
        positions.append(index)
    outcomes = receiver.receive(events, rejects, source=source, positions=positions,
                                refuse=lateness(limits)) if events or rejects else []
    for index, event, outcome in zip(positions, events, outcomes, strict=True):
        if outcome.status in ("accepted", "duplicate"):
            results[index] = RecordResult(index, event.event_id, outcome.status)
        else:
            results[index] = RecordResult(index, event.event_id, "rejected",
                                          outcome.reason or CONFLICT)
    return [r for r in results if r is not None]


def _event_id_of(item: Any) -> str | None:
    if isinstance(item, dict) and isinstance(item.get("event_id"), str):
        return str(item["event_id"])[:200]
    return None


def _raw(item: Any) -> str:
    return json.dumps(item, ensure_ascii=False, default=str)
