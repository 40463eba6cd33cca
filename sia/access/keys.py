"""API keys: created once, shown once, stored as a SHA-256 hash, revocable.

A key reads `sia_<id>_<secret>`: the id finds the row, the hash of the whole key proves
it (keys are 32 random bytes, so a plain hash is as strong as a slow one would be).
Roles:
- `crm`: posts events;
- `rep`: bound to one rep id; reads that rep's alerts and gives feedback on them;
- `manager`: reads a team's alerts (every team when the key has no team) and tunes
  thresholds;
- `admin`: everything, and manages keys.
Keys live in the store's database, so a key created with `sia keys create` works at once,
also on a server that is already running.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from sqlalchemy import String, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column

from sia.alerts.store import AlertStore, Base, UtcDateTime

log = logging.getLogger("sia.keys")
Role = Literal["crm", "rep", "manager", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
_TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per key


class ApiKeyRecord(Base):
    """One API key (its hash, never the key)."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    team: Mapped[str | None] = mapped_column(String(200))
    rep_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


@dataclass(frozen=True)
class Principal:
    """Who a request is from: a key's name, role and scope."""

    key_id: str
    name: str
    role: Role
    team: str | None = None
    rep_id: str | None = None

    def describe(self) -> str:
        """'manager key "ana" (team UK)' for audit trails and errors."""
        scope = f", team {self.team}" if self.team else (
            f", rep {self.rep_id}" if self.rep_id else "")
        return f'{self.role} key "{self.name}"{scope}'


@dataclass(frozen=True)
class KeyInfo:
    """What `sia keys list` shows of a key."""

    key_id: str
    name: str
    role: str
    team: str | None
    rep_id: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyProblem(ValueError):
    """A key cannot be created or revoked as asked."""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    """Create, list, revoke and check keys in a store's database."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store
        self._touched: dict[str, datetime] = {}

    def create(self, *, role: str, name: str, team: str | None = None,
               rep_id: str | None = None, now: datetime | None = None) -> tuple[str, KeyInfo]:
        """A new key (returned once: only its hash is kept) and what is stored of it."""
        if role not in ROLES:
            raise KeyProblem(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        name = name.strip()
        if not name or len(name) > 200:
            raise KeyProblem("name must be 1 to 200 characters")
        if role == "rep" and not rep_id:
            raise KeyProblem("a rep key needs --rep: the rep id whose alerts it reads")
        if role != "rep" and rep_id:
            raise KeyProblem("--rep binds rep keys only")
        if role != "manager" and team:
            raise KeyProblem("--team scopes manager keys only")
        key_id = secrets.token_hex(4)
        key = f"sia_{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKeyRecord(key_id=key_id, key_hash=_hash(key), name=name, role=role,
                              team=team, rep_id=rep_id, created_at=now or datetime.now(UTC))
        with Session(self.store.engine) as session, session.begin():
            session.add(record)
            session.flush()
            info = _info(record)
        return key, info

    def list(self) -> Sequence[KeyInfo]:
        """Every key, oldest first (revoked ones too, marked)."""
        with Session(self.store.engine) as session:
            return [_info(r) for r in session.scalars(
                select(ApiKeyRecord).order_by(ApiKeyRecord.created_at, ApiKeyRecord.key_id))]

    def revoke(self, key_id: str, *, now: datetime | None = None) -> KeyInfo:
        """Revoke a key by its id; it stops working at once."""
        with Session(self.store.engine) as session, session.begin():
            record = session.get(ApiKeyRecord, key_id)
            if record is None:
                raise KeyProblem(f"no key {key_id!r} (see `sia keys list`)")
            if record.revoked_at is None:
                record.revoked_at = now or datetime.now(UTC)
            return _info(record)

    def authenticate(self, key: str, *, now: datetime | None = None) -> Principal | None:
        """The principal a presented key stands for; None for an unknown, malformed or
        revoked key."""
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != "sia" or len(parts[1]) != 8:
            return None
        with Session(self.store.engine) as session:
            record = session.get(ApiKeyRecord, parts[1])
            if record is None or record.revoked_at is not None \
                    or not hmac.compare_digest(record.key_hash, _hash(key)):
                return None
            principal = _principal(record)
        self._touch(principal.key_id, now or datetime.now(UTC))
        return principal

    def active(self, key_id: str) -> Principal | None:
        """The principal of a key already proven once (a console session names its key
        by id); None when the key is unknown or revoked since, so revoking a key ends
        its sessions too."""
        with Session(self.store.engine) as session:
            record = session.get(ApiKeyRecord, key_id)
            if record is None or record.revoked_at is not None:
                return None
            return _principal(record)

    def _touch(self, key_id: str, now: datetime) -> None:
        """Note when a key was last used, in the background: a request never waits for
        the store's write lock to say so."""
        last = self._touched.get(key_id)
        if last is not None and now - last < _TOUCH_EVERY:
            return
        self._touched[key_id] = now
        threading.Thread(target=self._write_touch, args=(key_id, now), daemon=True,
                         name="sia-key-touch").start()

    def _write_touch(self, key_id: str, now: datetime) -> None:
        try:
            with Session(self.store.engine) as session, session.begin():
                record = session.get(ApiKeyRecord, key_id)
                if record is not None:
                    record.last_used_at = now
        except OperationalError as exc:  # busy: the next use will say so
            log.info("last use of key %s not recorded: %s", key_id, exc)


def _principal(r: ApiKeyRecord) -> Principal:
    return Principal(r.key_id, r.name, r.role, r.team, r.rep_id)  # type: ignore[arg-type]


def _info(r: ApiKeyRecord) -> KeyInfo:
    return KeyInfo(r.key_id, r.name, r.role, r.team, r.rep_id, r.created_at, r.last_used_at,
                   r.revoked_at)
