"""Holding alerts back: snoozes (with a notice when they end) and mutes (silent).

`hold` makes one, `holds` lists them, `lift` ends one early; `known_target` says whether
the store has ever had an alert about what is to be held (a typo in a customer id would
otherwise hold nothing, silently).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sia.alerts.store import AlertRecord, AlertStore
from sia.delivery.dispatcher import snooze
from sia.delivery.tables import AlertRoute, Snooze

SCOPES = ("customer", "alert", "detector")


class NoHold(LookupError):
    """No snooze or mute with that id (or not of that kind)."""


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
    created_at: datetime | None = None

    @classmethod
    def of(cls, row: Snooze) -> Hold:
        """The stored row as a Hold."""
        return cls(row.id, row.kind, row.scope, row.target, row.who, row.why, row.until,
                   row.rep_id, row.created_at)


def hold(store: AlertStore, *, kind: str, scope: str, target: str, who: str, why: str,
         days: float, now: datetime, rep_id: str | None = None) -> Hold:
    """Snooze or mute alerts about a customer, a dedup key or a detector for `days`
    (raises ValueError for a wrong scope, kind or length)."""
    if not 0 < days <= 3650:
        raise ValueError(f"days must be in (0, 3650], got {days:g}")
    until = now + timedelta(days=days)
    number = snooze(store, scope=scope, target=target, who=who, why=why, until=until,
                    now=now, rep_id=rep_id, kind=kind)
    return Hold(number, kind, scope, target, who, why, until, rep_id, now)


def holds(store: AlertStore, *, kind: str, now: datetime, ended: bool = False,
          rep_id: str | None = None) -> list[Hold]:
    """The snoozes or mutes in force at `now` (with `ended`, also those that ended),
    soonest end first; `rep_id`: only that rep's and those for everyone."""
    query = select(Snooze).where(Snooze.kind == kind).order_by(Snooze.until, Snooze.id)
    if not ended:
        query = query.where(Snooze.until > now)
    if rep_id is not None:
        query = query.where((Snooze.rep_id == rep_id) | Snooze.rep_id.is_(None))
    with Session(store.engine) as session:
        return [Hold.of(row) for row in session.scalars(query)]


def lift(store: AlertStore, *, kind: str, hold_id: int, now: datetime) -> Hold:
    """End a snooze or mute now (raises NoHold, or ValueError when it has ended already).

    Alerts a lifted snooze held back become due now, with the notice that says the
    snooze ended; alerts a mute dropped stay dropped, and new ones are sent again."""
    with Session(store.engine) as session, session.begin():
        row = session.get(Snooze, hold_id)
        if row is None or row.kind != kind:
            raise NoHold(f"no {kind} {hold_id}")
        if row.until <= now:
            raise ValueError(f"{kind} {hold_id} ended already ({row.until:%Y-%m-%d %H:%M} UTC)")
        if kind == "snooze":  # what it held waits for its end: that is now
            session.execute(update(AlertRoute).where(
                AlertRoute.disposition == "snoozed", AlertRoute.due_at == row.until,
                AlertRoute.message_id.is_(None)).values(due_at=now))
        row.until = now
        return Hold.of(row)


def known_target(store: AlertStore, scope: str, target: str) -> bool:
    """Whether any stored alert is about this customer (scope customer) or has this dedup
    key (scope alert); detectors are checked against the registry, not here."""
    column = {"customer": AlertRecord.subject_id, "alert": AlertRecord.dedup_key}[scope]
    query = select(AlertRecord.alert_id).where(column == target).limit(1)
    if scope == "customer":
        query = query.where(AlertRecord.subject_kind == "customer")
    with Session(store.engine) as session:
        return session.scalar(query) is not None
