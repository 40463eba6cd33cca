"""When an event is too far ahead of the clock, or too late, to be learned.

A stream has a clock: the newest event time seen (a replay), or the wall clock (a live
service). An event dated far ahead of it would move every detector's clock with it (one
order dated 2111 made every customer look lost), and one that arrives long after its
time would have detectors run decayed state backwards. Both are refused with a reason
that names the times; what lies inside the bounds is learned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class TimeLimits:
    """How far ahead of the clock, and how far behind it, an event may be dated."""

    max_ahead: timedelta = timedelta(days=1)
    max_late: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        if self.max_ahead < timedelta(0) or self.max_late < timedelta(0):
            raise ValueError("max_ahead and max_late must not be negative")


def time_problem(occurred_at: datetime, *, clock: datetime | None,
                 limits: TimeLimits) -> str | None:
    """Why an event dated `occurred_at` cannot be learned at `clock`; None when it can.

    No clock yet (the first event of a stream) accepts any time.
    """
    if clock is None:
        return None
    if occurred_at - clock > limits.max_ahead:
        return (f"occurred_at {occurred_at.isoformat()} is more than "
                f"{_span(limits.max_ahead)} ahead of the stream's clock {clock.isoformat()}")
    if clock - occurred_at > limits.max_late:
        return (f"occurred_at {occurred_at.isoformat()} is more than "
                f"{_span(limits.max_late)} behind the stream's clock {clock.isoformat()} "
                "(late events are refused: learning them would run decayed state backwards)")
    return None


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
