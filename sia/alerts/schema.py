"""The alert store's schema: Alembic migrations shipped in `sia/alerts/migrations`.

`migrate(url)` brings a database to the newest revision (what `sia db upgrade` runs);
every `AlertStore` does the same when it opens, so a new SQLite file or an empty
PostgreSQL database is ready at once. No alembic.ini is needed: the script location is
the package's own folder. Stores opening together take turns (an advisory lock on
PostgreSQL, SQLite's write lock), so one of them migrates and the others find the schema
at head.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).with_name("migrations")
LOCK_KEY = 0x5A1A_0001  # pg_advisory_xact_lock key: one migrator at a time per database


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the packaged migrations (on `connection` when given)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@cache
def head() -> str:
    """The newest revision."""
    revision = ScriptDirectory.from_config(config()).get_current_head()
    if revision is None:
        raise RuntimeError(f"no migrations in {MIGRATIONS}")
    return revision


def current(connection: Connection) -> str | None:
    """The revision a database is at (None: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> bool:
    """Bring the database behind `engine` to head; True when anything was applied.

    At head (every open but the first) this is one query. Otherwise the migrations run in
    one transaction that first takes the database's migration lock, so concurrent openers
    wait and then find the schema at head; on SQLite the single transaction also spares
    a commit per DDL statement.
    """
    with engine.connect() as connection:
        if current(connection) == head():
            return False
    with engine.begin() as connection:
        _lock(connection)
        if current(connection) == head():
            return False
        command.upgrade(config(connection), "head")
        return True


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, until commit


def migrate(database_url: str) -> str:
    """Bring the database at `database_url` to head; returns the revision it is at."""
    engine = create_engine(database_url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            return current(connection) or ""
    finally:
        engine.dispose()
