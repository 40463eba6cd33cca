"""Holding alerts back: snoozes (with a notice when they end) and mutes (silent)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sia.alerts.store import AlertStore
from sia.delivery.dispatcher import snooze


@dataclass(frozen=True)
class Hold:
    """A snooze or mute as stored."""

    hold_id: int
    kind: str
    scope: str
    target: str
    who: str
    why: str
    until: datetime
    rep_id: str | None


def hold(store: AlertStore, *, kind: str, scope: str, target: str, who: str, why: str,
         days: float, now: datetime, rep_id: str | None = None) -> Hold:
    """Snooze or mute alerts about a customer, a dedup key or a detector for `days`
    (raises ValueError for a wrong scope, kind or length)."""
    if not 0 < days <= 3650:
        raise ValueError(f"days must be in (0, 3650], got {days:g}")
    until = now + timedelta(days=days)
    number = snooze(store, scope=scope, target=target, who=who, why=why, until=until,
                    now=now, rep_id=rep_id, kind=kind)
    return Hold(number, kind, scope, target, who, why, until, rep_id)
