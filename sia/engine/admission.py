"""When an event is too far ahead of the clock, or too late, to be learned.

A stream has a clock: the newest event time seen (a replay), or the wall clock (a live
service). An event dated far ahead of it would move every detector's clock with it (one
order dated 2111 made every customer look lost), and one that arrives long after its
time would have detectors run decayed state backwards. Both are refused with a reason
that names the times; what lies inside the bounds is learned.

`event_time_problem` is the engine's whole rule: ahead of the wall clock by more than
`max_ahead` when there is one, else ahead of the stream's clock by more than `max_gap`
(a replay pauses legitimately: the UCI Online Retail data has none from 23 December to
4 January), or behind the stream's clock by more than `max_late` (reference records
excepted: the catalog keeps the newest record whatever the order).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class TimeLimits:
    """How far ahead of the clock, and how far behind it, an event may be dated."""

    max_ahead: timedelta = timedelta(days=1)
    max_late: timedelta = timedelta(days=7)
    # ahead of the stream's clock (its newest event) when there is no wall clock (a
    # replay, a partition of one): a quarter. Longer than a holiday's pause (12 days in
    # UCI Online Retail, 13 in the Superstore sample) and than the pauses of one Kafka
    # partition's share of the customers (47 days in a third of the Superstore sample),
    # far shorter than a wrong year; a stream that pauses longer needs a larger bound
    max_gap: timedelta = timedelta(days=92)

    def __post_init__(self) -> None:
        if min(self.max_ahead, self.max_late, self.max_gap) < timedelta(0):
            raise ValueError("max_ahead, max_late and max_gap must not be negative")


def time_problem(occurred_at: datetime, *, clock: datetime | None,
                 limits: TimeLimits, clock_name: str = "the stream's clock") -> str | None:
    """Why an event dated `occurred_at` cannot be learned at `clock`; None when it can.

    No clock yet (the first event of a stream) accepts any time.
    """
    if clock is None:
        return None
    if occurred_at - clock > limits.max_ahead:
        return (f"occurred_at {occurred_at.isoformat()} is more than "
                f"{_span(limits.max_ahead)} ahead of {clock_name} {clock.isoformat()}")
    if clock - occurred_at > limits.max_late:
        return (f"occurred_at {occurred_at.isoformat()} is more than "
                f"{_span(limits.max_late)} behind {clock_name} {clock.isoformat()} "
                "(late events are refused: learning them would run decayed state backwards)")
    return None


def event_time_problem(occurred_at: datetime, *, clock: datetime | None,
                       wall: datetime | None, limits: TimeLimits,
                       reference: bool = False) -> str | None:
    """Why an event dated `occurred_at` cannot be learned by an engine whose clock (the
    newest event or tick time) is `clock`, with the wall clock reading `wall` (None: a
    replay, judged by the stream's clock alone); None when it can. `reference`: a
    customer, product or rep record, which may be as old as it likes."""
    if wall is not None:
        if occurred_at - wall > limits.max_ahead:
            return time_problem(occurred_at, clock=wall, clock_name="the wall clock",
                                limits=TimeLimits(limits.max_ahead, _NEVER, _NEVER))
    elif clock is not None and occurred_at - clock > limits.max_gap:
        return (f"occurred_at {occurred_at.isoformat()} is more than {_span(limits.max_gap)} "
                f"ahead of the stream's clock {clock.isoformat()} (its newest event; a "
                "stream that pauses for longer needs a larger max_gap)")
    if not reference and clock is not None and clock - occurred_at > limits.max_late:
        return time_problem(occurred_at, clock=clock,
                            limits=TimeLimits(_NEVER, limits.max_late, _NEVER))
    return None


_NEVER = timedelta.max


def _span(delta: timedelta) -> str:
    """'1 day', '7 days', '6 hours'."""
    seconds = delta.total_seconds()
    if seconds >= 86_400 and seconds % 86_400 == 0:
        days = int(seconds // 86_400)
        return f"{days} day{'s' if days != 1 else ''}"
    if seconds >= 3600 and seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{seconds:g} seconds"
