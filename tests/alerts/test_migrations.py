"""The store's Alembic migrations: to head from empty, same schema as the models, and
databases made before migrations existed keep working."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

import sia.delivery.tables  # noqa: F401  (the outbox tables, on the store's metadata)
from sia.alerts import schema
from sia.alerts.store import AlertStore, Base

from .conftest import alert

TABLES = {"alerts", "messages", "snoozes", "alert_routes", "delivery_attempts", "feedback"}


def differences(url: str) -> list[object]:
    """What a migrated database lacks or has more than the models (types included)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_postgres_migrates_from_empty_to_the_models_schema(pg_url: str) -> None:
    assert tables(pg_url) == set()
    assert schema.migrate(pg_url) == schema.head() == "0001"
    assert tables(pg_url) == TABLES | {"alembic_version"}
    assert differences(pg_url) == []
    assert schema.migrate(pg_url) == "0001"  # again: nothing to do


def test_sqlite_migrates_from_empty_to_the_models_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sia.db'}"
    assert schema.migrate(url) == "0001"
    assert tables(url) == TABLES | {"alembic_version"}
    assert differences(url) == []


def test_postgres_migrations_go_down_and_up_again(pg_url: str) -> None:
    schema.migrate(pg_url)
    engine = create_engine(pg_url)
    with engine.begin() as connection:
        command.downgrade(schema.config(connection), "base")
    assert tables(pg_url) == {"alembic_version"}
    engine.dispose()
    assert schema.migrate(pg_url) == "0001"
    assert differences(pg_url) == []


def test_stores_opening_together_on_an_empty_database_migrate_once(pg_url: str) -> None:
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_store() -> None:
        start.wait()
        try:
            AlertStore(pg_url).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=open_store) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    engine = create_engine(pg_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == [
            ("0001",)]
    engine.dispose()


@pytest.mark.parametrize("made_before", [["alerts"], sorted(TABLES)])
def test_a_database_made_before_migrations_keeps_its_alerts(
        tmp_path: Path, made_before: list[str]) -> None:
    # what SIA 0.1 did: create_all, with or without the delivery tables imported
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine, tables=[Base.metadata.tables[t] for t in made_before])
    engine.dispose()
    first = AlertStore.__new__(AlertStore)  # the old store: no migrations, same inserts
    first.engine = create_engine(url)
    assert first.add([alert("k1"), alert("k2")]) == 2
    first.close()

    store = AlertStore(url)
    try:
        with store.engine.connect() as connection:
            assert schema.current(connection) == "0001"
        assert tables(url) == TABLES | {"alembic_version"}
        assert differences(url) == []
        assert store.add([alert("k1"), alert("k3")]) == 1
        assert store.count() == 3
    finally:
        store.close()
