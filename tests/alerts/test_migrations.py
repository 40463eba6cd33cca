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

import sia.access.keys
import sia.delivery.tables
import sia.thresholds.versions  # noqa: F401  (threshold versions, on the same metadata)
from sia.alerts import schema
from sia.alerts.store import AlertStore, Base

from .conftest import alert

HEAD = "0003"
TABLES = {"alerts", "messages", "snoozes", "alert_routes", "delivery_attempts", "feedback",
          "api_keys", "threshold_versions"}


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
    assert schema.migrate(pg_url) == schema.head() == HEAD
    assert tables(pg_url) == TABLES | {"alembic_version"}
    assert differences(pg_url) == []
    assert schema.migrate(pg_url) == HEAD  # again: nothing to do


def test_sqlite_migrates_from_empty_to_the_models_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sia.db'}"
    assert schema.migrate(url) == HEAD
    assert tables(url) == TABLES | {"alembic_version"}
    assert differences(url) == []


def test_postgres_migrations_go_down_and_up_again(pg_url: str) -> None:
    schema.migrate(pg_url)
    engine = create_engine(pg_url)
    with engine.begin() as connection:
        command.downgrade(schema.config(connection), "base")
    assert tables(pg_url) == {"alembic_version"}
    engine.dispose()
    assert schema.migrate(pg_url) == HEAD
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
            (HEAD,)]
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
            assert schema.current(connection) == HEAD
        assert tables(url) == TABLES | {"alembic_version"}
        assert differences(url) == []
        assert store.add([alert("k1"), alert("k3")]) == 1
        assert store.count() == 3
    finally:
        store.close()


def test_repeated_verdicts_of_a_0001_database_become_one_per_person(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        command.upgrade(schema.config(connection), "0001")
    engine.dispose()
    old = AlertStore.__new__(AlertStore)  # a 0.1 store: schema 0001, no migrations run
    old.engine = create_engine(url)
    with old.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO alerts (alert_id, detector, kind, subject_kind, subject_id, "
            "occurred_at, score, severity, title, explanation, action, dedup_key, value, "
            "evidence, facts, status, stored_at) VALUES ('a1', 'drift', 'overdue', "
            "'customer', 'C1', '2026-01-01', 0.5, 'high', 't', 'e', 'a', 'k', 1, '[]', "
            "'{}', 'pending', '2026-01-01')"))
        for verdict, at in (("useful", "2026-01-02"), ("useful", "2026-01-03"),
                            ("not_useful", "2026-01-04")):
            connection.execute(text(
                "INSERT INTO feedback (alert_id, rep_id, verdict, source, at) VALUES "
                "('a1', 'R1', :v, 'slack', :at)"), {"v": verdict, "at": at})
        connection.execute(text("INSERT INTO feedback (alert_id, rep_id, verdict, source, at) "
                                "VALUES ('a1', NULL, 'useful', 'email', '2026-01-05')"))
    old.close()
    assert schema.migrate(url) == HEAD
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT voter, verdict FROM feedback ORDER BY voter")).all()
    engine.dispose()
    assert rows == [("email", "useful"), ("rep:R1", "not_useful")]  # the newest of each
    assert differences(url) == []
