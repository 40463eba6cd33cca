"""Alembic's environment for the alert store.

Runs on the connection that `sia.alerts.schema` passes in `config.attributes`, else on
`sqlalchemy.url` (the `alembic` command line with an ini of your own), or emits SQL in
offline mode.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

# every table lives on the store's metadata: importing their modules puts them there
import sia.access.keys
import sia.delivery.tables
import sia.thresholds.versions  # noqa: F401
from sia.alerts.store import Base

config = context.config


def run(connection: Connection) -> None:
    """Apply the pending revisions on one connection."""
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (shared := config.attributes.get("connection")) is not None:
    run(shared)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url", ""))
    with engine.connect() as connection:
        run(connection)
    engine.dispose()
