"""The alert store: SQLAlchemy 2, SQLite by default, PostgreSQL when scaled out.

Alert ids are deterministic and the primary key, so storing an alert twice (a replay
after a crash or a rebalance, two workers at once) leaves one row. The schema comes from
the Alembic migrations in `sia/alerts/migrations`, applied when a store opens.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    Insert,
    MetaData,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from sia.alerts.schema import current, upgrade
from sia.findings import Finding, Severity
from sia.policy import Alert, RecentAlert

Owner = Callable[[Alert], tuple[str | None, str | None]]  # an alert's (rep id, team)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Times stored in UTC and read back with their zone (SQLite forgets zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Store in UTC."""
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Read back as aware UTC (PostgreSQL answers in its session's zone)."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with stable constraint names."""

    metadata = MetaData(naming_convention=NAMING)


class AlertRecord(Base):
    """One stored alert."""

    __tablename__ = "alerts"

    alert_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    detector: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(200), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    score: Mapped[float] = mapped_column(Float)
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    explanation: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    dedup_key: Mapped[str] = mapped_column(String(400), index=True)
    value: Mapped[float] = mapped_column(Float)
    evidence: Mapped[list[str]] = mapped_column(JSON)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    stored_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # whose alert it is: the customer's owner rep (or the rep it is about) and their team,
    # as the reference data said when it was stored; what rep and manager keys may read
    rep_id: Mapped[str | None] = mapped_column(String(200), index=True)
    team: Mapped[str | None] = mapped_column(String(200), index=True)

    def to_alert(self) -> Alert:
        """The stored alert as policy made it (for routing)."""
        finding = Finding(
            detector=self.detector, kind=self.kind,
            subject_kind=self.subject_kind,  # type: ignore[arg-type]
            subject_id=self.subject_id, occurred_at=self.occurred_at, score=self.score,
            severity=Severity(self.severity), title=self.title, explanation=self.explanation,
            action=self.action, dedup_key=self.dedup_key, evidence=tuple(self.evidence),
            value=self.value, facts=dict(self.facts))
        return Alert(self.alert_id, finding)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view of the alert."""
        return {
            "alert_id": self.alert_id, "detector": self.detector, "kind": self.kind,
            "subject_kind": self.subject_kind, "subject_id": self.subject_id,
            "occurred_at": self.occurred_at.isoformat(), "score": self.score,
            "severity": self.severity, "title": self.title, "explanation": self.explanation,
            "action": self.action, "dedup_key": self.dedup_key, "value": self.value,
            "evidence": self.evidence, "facts": self.facts, "status": self.status,
            "rep_id": self.rep_id, "team": self.team,
        }


def where(url: str) -> str:
    """A store URL fit to print: the password masked, a SQLite file as its path."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # not a URL SQLAlchemy reads: show nothing of it that could be secret
        return "<an unreadable database URL>"
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite:///{parsed.database}" if parsed.database else "sqlite:// (in memory)"
    return parsed.render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class NoStore(LookupError):
    """No alert store where one was to be read (no SQLite file, or an empty database)."""


class AlertStore:
    """Stores alerts once each (insert-or-ignore on the alert id)."""

    def __init__(self, url: str = "sqlite:///sia.db", *, create: bool = True) -> None:
        """Open the store at `url`, creating it (a new SQLite file, the schema in an empty
        database) unless `create` is false: then a store that is not there raises NoStore
        and nothing is written (readers such as `sia alerts`)."""
        self.engine: Engine = create_engine(url)
        if not create:
            self._exists_or_raise(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        upgrade(self.engine)

    def _exists_or_raise(self, url: str) -> None:
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database not in (None, "", ":memory:") \
                and not database.startswith("file:") and not Path(database).is_file():
            self.engine.dispose()
            raise NoStore(f"no alert store at {where(url)}")
        with self.engine.connect() as connection:
            at = current(connection)
        if at is None:
            self.engine.dispose()
            raise NoStore(f"no alert store at {where(url)} (the database holds no SIA tables)")

    def add(self, alerts: Iterable[Alert], *, owner: Owner | None = None,
            history_before: datetime | None = None) -> int:
        """Store alerts; returns how many were new (repeats are ignored).

        `owner` says whose each alert is (rep id and team, for who may read it);
        alerts about a time before `history_before` (a backfill of old events) are
        stored as history: kept, never sent to people.

        One INSERT ... ON CONFLICT DO NOTHING RETURNING: an alert another writer stored
        before or meanwhile (a concurrent worker, a replay) is skipped, never an error,
        and only the rows this call inserted are counted.
        """
        unique = {r["alert_id"]: r for r in (_row(a, owner, history_before) for a in alerts)}
        if not unique:
            return 0
        # in id order: concurrent writers then wait for each other, never deadlock
        rows = [unique[alert_id] for alert_id in sorted(unique)]
        with Session(self.engine) as session, session.begin():
            stored = session.scalars(self._insert_new(), rows)
            return len(stored.all())

    def _insert_new(self) -> Insert:
        table = Base.metadata.tables[AlertRecord.__tablename__]
        if self.engine.dialect.name == "postgresql":
            statement: Insert = postgresql_insert(table).on_conflict_do_nothing(
                index_elements=["alert_id"])
        elif self.engine.dialect.name == "sqlite":
            statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=["alert_id"])
        else:
            raise ValueError(f"the alert store runs on SQLite or PostgreSQL, not "
                             f"{self.engine.dialect.name}")
        return statement.returning(table.c.alert_id)

    def list(self, *, detector: str | None = None, subject_id: str | None = None,
             limit: int = 50) -> Sequence[AlertRecord]:
        """Newest alerts first, optionally filtered."""
        query = select(AlertRecord).order_by(AlertRecord.occurred_at.desc(),
                                             AlertRecord.alert_id).limit(limit)
        if detector:
            query = query.where(AlertRecord.detector == detector)
        if subject_id:
            query = query.where(AlertRecord.subject_id == subject_id)
        with Session(self.engine) as session:
            return list(session.scalars(query))

    def recent_alerts(self, since: datetime | None = None) -> Sequence[RecentAlert]:
        """The newest alert of each dedup key (optionally since a time), for policy."""
        newest = select(AlertRecord.dedup_key,
                        func.max(AlertRecord.occurred_at).label("at")).group_by(
            AlertRecord.dedup_key)
        if since is not None:
            newest = newest.where(AlertRecord.occurred_at >= since)
        latest = newest.subquery()
        query = select(AlertRecord.dedup_key, AlertRecord.detector, AlertRecord.kind,
                       AlertRecord.subject_kind, AlertRecord.subject_id,
                       AlertRecord.occurred_at).join(
            latest, (AlertRecord.dedup_key == latest.c.dedup_key)
            & (AlertRecord.occurred_at == latest.c.at)).order_by(AlertRecord.occurred_at)
        with Session(self.engine) as session:
            return [RecentAlert(*row) for row in session.execute(query)]

    def archive_before(self, cutoff: datetime) -> int:
        """Keep older pending alerts as history: stored, never delivered (replays of the past)."""
        with Session(self.engine) as session, session.begin():
            result = session.execute(update(AlertRecord).where(
                AlertRecord.status == "pending", AlertRecord.occurred_at < cutoff)
                .values(status="history"))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def count(self, *, detector: str | None = None) -> int:
        """Number of stored alerts."""
        query = select(func.count()).select_from(AlertRecord)
        if detector:
            query = query.where(AlertRecord.detector == detector)
        with Session(self.engine) as session:
            return int(session.scalar(query) or 0)

    def location(self) -> str:
        """Where this store is, fit to print (the password masked)."""
        return where(self.engine.url.render_as_string(hide_password=False))

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()


def _row(alert: Alert, owner: Owner | None, history_before: datetime | None
         ) -> dict[str, Any]:
    f = alert.finding
    rep_id, team = owner(alert) if owner is not None else (None, None)
    old = history_before is not None and f.occurred_at < history_before
    return {
        "alert_id": alert.alert_id, "detector": f.detector, "kind": f.kind,
        "subject_kind": f.subject_kind, "subject_id": f.subject_id,
        "occurred_at": f.occurred_at, "score": f.score,
        "severity": f.severity.value,
        "title": f.title, "explanation": f.explanation, "action": f.action,
        "dedup_key": f.dedup_key, "value": f.value, "evidence": list(f.evidence),
        "facts": json.loads(json.dumps(f.facts)), "status": "history" if old else "pending",
        "stored_at": datetime.now(UTC), "rep_id": rep_id, "team": team,
    }
