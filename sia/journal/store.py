"""The journal: accepted events in order, unique by event id, and the rejects.

An event is committed (and on SQLite flushed to disk: `synchronous=FULL`) before its
sender is told it was accepted, so a crash after the answer loses nothing. Its id is a
unique key for as long as the journal is kept, not for a time window: the same event
posted again, a day or a year later, is a duplicate and changes nothing; the same id
with other content is refused as a conflict. Content is compared by the SHA-256 of the
event's canonical JSON (keys sorted, values as the contract normalises them), so the
same event sent with other spacing or key order is still the same event.

The live engine reads the journal in `seq` order from where its snapshot left off. On
SQLite, writers take turns, so a reader never sees a later `seq` committed before an
earlier one.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    Insert,
    Integer,
    MetaData,
    String,
    Text,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sia.alerts.store import NAMING, UtcDateTime
from sia.events.canonical import canonical
from sia.events.models import Event

Status = Literal["accepted", "duplicate", "conflict", "refused"]
Publish = Callable[[list[Event]], None]
Refuse = Callable[[Event, datetime | None], str | None]  # why a new event cannot be taken
CONFLICT = ("conflict: this event_id was already accepted with other content (an event id "
            "names one event for good; send a change under a new id)")


class _Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class JournalEntry(_Base):
    """One accepted event."""

    __tablename__ = "journal_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    digest: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[str | None] = mapped_column(String(200), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    source: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)


class StoredReject(_Base):
    """One rejected record, kept whole with its reason."""

    __tablename__ = "journal_rejects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    source: Mapped[str] = mapped_column(String(200), default="", index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)  # index in its request
    event_id: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the journal made of one event (a refused one says why)."""

    event_id: str
    status: Status
    seq: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RejectEntry:
    """A record to keep as rejected."""

    position: int
    event_id: str | None
    reason: str
    raw: str


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an answered event survives power loss
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Journal:
    """Accepted events and rejects in one database (SQLite file or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        _Base.metadata.create_all(self.engine)
        # one record() at a time judges lateness against the clock and takes its seqs:
        # two requests judged against the same clock and committed in the other order
        # let in events days behind the newest, which the engine then refused after the
        # front door had answered "accepted"
        self._recording = threading.Lock()
        # the newest event time this process accepted (or found at start): what the
        # front door judges lateness by
        self.clock: datetime | None = self.newest_time()

    def record(self, events: Sequence[Event], rejects: Sequence[RejectEntry] = (), *,
               source: str = "", now: datetime | None = None,
               publish: Publish | None = None, refuse: Refuse | None = None,
               positions: Sequence[int] | None = None) -> list[Accepted]:
        """Append new events and keep rejects, in one transaction committed before
        returning; one outcome per event, in order.

        An event whose id the journal holds is a duplicate (same content) or a conflict
        (other content), whenever it comes. For a new one, `refuse(event, clock)` (clock:
        the newest event time before it) may say why it cannot be taken (too late): it is
        then kept as a reject. `publish` is handed the newly accepted events before the
        commit (a Kafka front door sends them on): if it raises, nothing is recorded and
        the error propagates, so an event is never marked accepted without having been
        handed on. `positions` are the events' places in their request.
        """
        now = now or datetime.now(UTC)
        places = list(positions) if positions is not None else list(range(len(events)))
        bodies = [canonical(e) for e in events]
        digests = [hashlib.sha256(b.encode()).hexdigest() for b in bodies]
        kept = [RejectEntry(r.position, r.event_id, r.reason, r.raw) for r in rejects]
        with self._recording:
            return self._record(events, bodies, digests, places, kept, source=source,
                                now=now, publish=publish, refuse=refuse)

    def _record(self, events: Sequence[Event], bodies: list[str], digests: list[str],
                places: list[int], kept: list[RejectEntry], *, source: str, now: datetime,
                publish: Publish | None, refuse: Refuse | None) -> list[Accepted]:
        """`record` under the lock: judge, insert, commit, move the clock."""
        with Session(self.engine) as session, session.begin():
            known = self._digests(session, {e.event_id for e in events})
            plan: list[tuple[str, str | None]] = []  # (status or "new", reason)
            rows: dict[str, dict[str, Any]] = {}
            clock = self.clock
            for event, body, digest, place in zip(events, bodies, digests, places,
                                                  strict=True):
                earlier = known.get(event.event_id)
                if earlier is not None:
                    plan.append(("duplicate" if earlier == digest else "conflict", None))
                    continue
                reason = refuse(event, clock) if refuse is not None else None
                if reason is not None:
                    plan.append(("refused", reason))
                    kept.append(RejectEntry(place, event.event_id, reason, body))
                    continue
                known[event.event_id] = digest
                rows[event.event_id] = {
                    "event_id": event.event_id, "digest": digest, "type": event.type,
                    "customer_id": getattr(event, "customer_id", None),
                    "occurred_at": event.occurred_at, "received_at": now, "source": source,
                    "body": body}
                plan.append(("new", None))
                if clock is None or event.occurred_at > clock:
                    clock = event.occurred_at
            seqs: dict[str, int] = {}
            if rows:
                inserted = session.execute(self._insert_new(), list(rows.values()))
                seqs = {event_id: seq for seq, event_id in inserted}
            raced = self._digests(session, {i for i in rows if i not in seqs})
            if publish is not None and seqs:
                publish([e for e, (status, _) in zip(events, plan, strict=True)
                         if status == "new" and e.event_id in seqs])
            results: list[Accepted] = []
            for event, body, digest, place, (status, reason) in zip(
                    events, bodies, digests, places, plan, strict=True):
                if status == "new" and event.event_id in seqs:
                    results.append(Accepted(event.event_id, "accepted", seqs[event.event_id]))
                    continue
                if status == "new":  # another writer stored this id meanwhile
                    status = "duplicate" if raced.get(event.event_id) == digest else "conflict"
                if status == "conflict":
                    kept.append(RejectEntry(place, event.event_id, CONFLICT, body))
                    reason = CONFLICT
                results.append(Accepted(event.event_id, status, reason=reason))  # type: ignore[arg-type]
            session.add_all(StoredReject(received_at=now, source=source, position=r.position,
                                         event_id=r.event_id, reason=r.reason, raw=r.raw)
                            for r in kept)
        newest = max((r["occurred_at"] for i, r in rows.items() if i in seqs), default=None)
        if newest is not None and (self.clock is None or newest > self.clock):
            self.clock = newest
        return results

    def _digests(self, session: Session, event_ids: set[str]) -> dict[str, str]:
        """The stored digest of each of these ids the journal holds."""
        if not event_ids:
            return {}
        found: dict[str, str] = {}
        ids = sorted(event_ids)
        for i in range(0, len(ids), 500):  # SQLite caps the parameters of one statement
            found.update(session.execute(select(JournalEntry.event_id, JournalEntry.digest)
                                         .where(JournalEntry.event_id.in_(ids[i:i + 500])))
                         .all())
        return found

    def _insert_new(self) -> Insert:
        table = _Base.metadata.tables[JournalEntry.__tablename__]
        if self.engine.dialect.name == "postgresql":
            statement: Insert = postgresql_insert(table).on_conflict_do_nothing(
                index_elements=["event_id"])
        else:
            statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=["event_id"])
        return statement.returning(table.c.seq, table.c.event_id)

    def keep_rejects(self, rejects: Iterable[RejectEntry], *, source: str,
                     now: datetime | None = None) -> None:
        """Keep rejected records (e.g. events the engine could not learn)."""
        self.record((), list(rejects), source=source, now=now)

    def read_after(self, seq: int, limit: int = 2048) -> list[tuple[int, str]]:
        """(seq, canonical JSON) of up to `limit` events after `seq`, in order."""
        with Session(self.engine) as session:
            return list(session.execute(
                select(JournalEntry.seq, JournalEntry.body).where(JournalEntry.seq > seq)
                .order_by(JournalEntry.seq).limit(limit)).all())

    def customer_events(self, customer_id: str, *, types: Sequence[str] = ("order",),
                        limit: int = 10) -> list[str]:
        """Canonical JSON of a customer's newest events of these types, newest first."""
        with Session(self.engine) as session:
            return list(session.scalars(
                select(JournalEntry.body).where(JournalEntry.customer_id == customer_id,
                                                JournalEntry.type.in_(list(types)))
                .order_by(JournalEntry.occurred_at.desc(), JournalEntry.seq.desc())
                .limit(limit)))

    def rep_record(self, rep_id: str) -> dict[str, Any] | None:
        """The newest reference record of a rep (its team, name, manager...), None when
        the CRM never sent one."""
        with Session(self.engine) as session:
            bodies = session.scalars(
                select(JournalEntry.body).where(JournalEntry.type == "rep",
                                                JournalEntry.body.contains(rep_id,
                                                                           autoescape=True))
                .order_by(JournalEntry.seq.desc()))
            for body in bodies:
                record: dict[str, Any] = json.loads(body)
                if record.get("rep_id") == rep_id:
                    return record
        return None

    def newest_time(self) -> datetime | None:
        """The newest event time in the journal, whoever wrote it."""
        with Session(self.engine) as session:
            newest = session.scalar(select(func.max(JournalEntry.occurred_at)))
        if newest is not None and newest.tzinfo is None:
            newest = newest.replace(tzinfo=UTC)
        return newest

    def newest_seq(self) -> int:
        """The seq of the newest event (0 when empty)."""
        with Session(self.engine) as session:
            return int(session.scalar(select(func.max(JournalEntry.seq))) or 0)

    def count(self) -> int:
        """How many events the journal holds."""
        with Session(self.engine) as session:
            return int(session.scalar(select(func.count()).select_from(JournalEntry)) or 0)

    def rejects(self, *, after: int = 0, limit: int = 100, source: str | None = None
                ) -> Sequence[StoredReject]:
        """Rejects, newest first, older than id `after` when given (a cursor)."""
        query = select(StoredReject).order_by(StoredReject.id.desc()).limit(limit)
        if after:
            query = query.where(StoredReject.id < after)
        if source is not None:
            query = query.where(StoredReject.source == source)
        with Session(self.engine) as session:
            return list(session.scalars(query))

    def writable(self) -> bool:
        """Whether a write transaction can be opened now (for readiness checks)."""
        try:
            with self.engine.begin() as connection:
                if self.engine.dialect.name == "sqlite":
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                connection.execute(select(1))
            return True
        except Exception:
            return False

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()
