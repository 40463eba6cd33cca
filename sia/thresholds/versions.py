"""Every version of the thresholds, kept: who changed what, when, why, and the diff.

Version 1 is the configuration files as a service first found them; each change made
through the API (or `sia thresholds apply`) is a new version holding the whole
configuration, so any version can be restored exactly (a rollback is a new version equal
to an old one). Versions are numbered 1, 2, 3...; a writer names the version it changed
(If-Match) and loses with Conflict when another change came first. A change that changes
nothing makes no version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from sia.alerts.store import AlertStore, Base, UtcDateTime
from sia.thresholds.changes import Config, Edit, diff


class ThresholdVersion(Base):
    """One version of the thresholds."""

    __tablename__ = "threshold_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    who: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))  # initial | apply | rollback | rep
    rollback_of: Mapped[int | None] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    diff: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # what became of it where it runs: {"live engine": "applied", "worker-1": "..."}
    outcome: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)


class Conflict(RuntimeError):
    """The thresholds moved on since the version a change was made against."""


@dataclass(frozen=True)
class Version:
    """A version as read back."""

    version: int
    created_at: datetime
    who: str
    role: str
    reason: str
    kind: str
    rollback_of: int | None
    config: Config
    diff: list[dict[str, Any]]
    outcome: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (without the whole configuration)."""
        return {"version": self.version, "created_at": self.created_at.isoformat(),
                "who": self.who, "role": self.role, "reason": self.reason,
                "kind": self.kind, "rollback_of": self.rollback_of, "diff": self.diff,
                "outcome": self.outcome}


def _read(row: ThresholdVersion) -> Version:
    config = Config(dict(row.config.get("detectors", {})), dict(row.config.get("policy", {})))
    return Version(row.version, row.created_at, row.who, row.role, row.reason, row.kind,
                   row.rollback_of, config, list(row.diff), dict(row.outcome or {}))


class Versions:
    """The versions of one store."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store

    def current(self) -> Version | None:
        """The newest version (None before the first)."""
        with Session(self.store.engine) as session:
            row = session.scalars(select(ThresholdVersion).order_by(
                ThresholdVersion.version.desc()).limit(1)).first()
            return _read(row) if row is not None else None

    def get(self, version: int) -> Version | None:
        """One version."""
        with Session(self.store.engine) as session:
            row = session.get(ThresholdVersion, version)
            return _read(row) if row is not None else None

    def history(self, *, limit: int = 50, before: int | None = None) -> Sequence[Version]:
        """Versions newest first, older than `before` when given."""
        query = select(ThresholdVersion).order_by(ThresholdVersion.version.desc()).limit(limit)
        if before is not None:
            query = query.where(ThresholdVersion.version < before)
        with Session(self.store.engine) as session:
            return [_read(r) for r in session.scalars(query)]

    def seed(self, config: Config, *, source: str) -> Version:
        """Version 1 from the configuration files, if there is no version yet; else the
        current one."""
        current = self.current()
        if current is not None:
            return current
        try:
            return self._insert(1, config, [], who=source, role="system",
                                reason="the configuration files the service started with",
                                kind="initial")
        except Conflict:  # another process seeded it first
            found = self.current()
            assert found is not None
            return found

    def record(self, config: Config, *, expected: int, who: str, role: str, reason: str,
               kind: str = "apply", rollback_of: int | None = None) -> Version | None:
        """A new version after `expected`, or None when it changes nothing; Conflict when
        `expected` is not the newest any more."""
        current = self.current()
        if current is None or current.version != expected:
            raise Conflict(f"the thresholds are at version "
                           f"{current.version if current else 0}, not {expected}: reload "
                           "them and make the change again")
        edits = diff(current.config, config)
        if not edits:
            return None
        return self._insert(expected + 1, config, edits, who=who, role=role, reason=reason,
                            kind=kind, rollback_of=rollback_of)

    def _insert(self, number: int, config: Config, edits: list[Edit], **fields: Any) -> Version:
        row = ThresholdVersion(version=number, created_at=datetime.now(UTC),
                               config=config.as_dict(), diff=[e.as_dict() for e in edits],
                               outcome={}, **fields)
        try:
            with Session(self.store.engine) as session, session.begin():
                session.add(row)
                session.flush()
                return _read(row)
        except IntegrityError:
            raise Conflict(f"version {number} was written by another change first: reload "
                           "the thresholds and make the change again") from None

    def note_outcome(self, version: int, where: str, outcome: str) -> None:
        """Record what a place running the thresholds did with a version."""
        with Session(self.store.engine) as session, session.begin():
            row = session.get(ThresholdVersion, version)
            if row is not None:
                row.outcome = {**(row.outcome or {}), where: outcome}

    def count(self) -> int:
        """How many versions there are."""
        with Session(self.store.engine) as session:
            return int(session.scalar(select(func.count()).select_from(ThresholdVersion))
                       or 0)
