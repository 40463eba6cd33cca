"""The alert store, on SQLite (the embedded default) and on the real PostgreSQL (Kafka
mode): every alert stored once, read back the same on both; on PostgreSQL also from many
writers at once."""

from __future__ import annotations

import multiprocessing
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from sia.alerts.store import AlertStore
from sia.policy import Alert

from .conftest import T0, alert, alerts


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store's URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'alerts.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture()
def store(store_url: str) -> Iterator[AlertStore]:
    s = AlertStore(store_url)
    yield s
    s.close()


def test_each_alert_id_is_stored_once(store: AlertStore) -> None:
    a1, a2, a3 = alert("k1"), alert("k2"), alert("k3", detector="cross_sell")
    assert store.add([a1, a2]) == 2
    assert store.add([a1, a3]) == 1
    assert store.add([a2, a2, a1]) == 0
    assert store.add([]) == 0
    a4 = alert("k4")
    assert store.add([a4, a4]) == 1  # a repeat inside one batch too
    assert store.count() == 4
    assert store.count(detector="cross_sell") == 1
    assert sorted(r.alert_id for r in store.list()) == sorted(
        a.alert_id for a in (a1, a2, a3, a4))
    assert [r.dedup_key for r in store.list(detector="cross_sell")] == ["k3"]


def test_alerts_read_back_as_stored(store: AlertStore) -> None:
    a = alert("k1", datetime(2024, 1, 1, 20, tzinfo=UTC))
    store.add([a])
    (record,) = store.list()
    # on PostgreSQL the session's zone is New York: times still come back in UTC
    assert record.to_dict()["occurred_at"] == "2024-01-01T20:00:00+00:00"
    assert record.to_alert() == a
    assert record.facts == {"days_quiet": 40, "usual_gap_days": 12.5}


def test_newest_first_across_zones_and_filters(store: AlertStore) -> None:
    late = alert("late", datetime(2024, 1, 1, 20, tzinfo=timezone(timedelta(hours=-5))))
    early = alert("early", datetime(2024, 1, 1, 23, tzinfo=UTC), customer="C2")
    store.add([early, late])
    # 20:00 at UTC-5 is 01:00 UTC the next day: later than 23:00 UTC
    assert [r.dedup_key for r in store.list()] == ["late", "early"]
    assert [r.dedup_key for r in store.list(subject_id="C2")] == ["early"]
    times = {r.dedup_key: r.occurred_at for r in store.recent_alerts()}
    assert times["late"] == late.finding.occurred_at
    assert all(t.tzinfo is not None for t in times.values())
    assert [r.dedup_key for r in store.list(limit=1)] == ["late"]


def test_recent_alerts_and_archiving(store: AlertStore) -> None:
    store.add([alert("k1", T0), alert("k1", T0 + timedelta(days=2)), alert("k2", T0)])
    recent = {r.dedup_key: r.occurred_at for r in store.recent_alerts()}
    assert recent == {"k1": T0 + timedelta(days=2), "k2": T0}
    assert [r.dedup_key for r in store.recent_alerts(since=T0 + timedelta(days=1))] == ["k1"]
    assert store.archive_before(T0 + timedelta(days=1)) == 2
    assert sorted(r.status for r in store.list()) == ["history", "history", "pending"]


def test_a_store_reopened_keeps_its_alerts(store_url: str) -> None:
    first = AlertStore(store_url)
    first.add([alert("k1"), alert("k2")])
    first.close()
    second = AlertStore(store_url)
    assert second.add([alert("k1"), alert("k3")]) == 1
    assert second.count() == 3
    second.close()


def add_together(url: str, batches: list[list[Alert]]) -> tuple[list[int], list[str]]:
    """Each batch added by its own store in its own thread, all released at once."""
    start = threading.Barrier(len(batches))
    added: list[int] = []
    errors: list[str] = []

    def write(batch: list[Alert]) -> None:
        store = AlertStore(url)
        start.wait()
        try:
            added.append(store.add(batch))
        except Exception as exc:  # reported by the caller
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            store.close()

    threads = [threading.Thread(target=write, args=(batch,)) for batch in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return added, errors


def test_writers_adding_the_same_alerts_at_once_store_each_once(pg_url: str) -> None:
    AlertStore(pg_url).close()  # migrated: the race below is about the alerts
    shared = alerts(300)
    for n in range(5):
        batch = shared + alerts(50, prefix=f"round{n}-")
        # four writers, each in its own order (rows locked in id order: no deadlock)
        orders = [random.Random(n * 10 + w).sample(batch, len(batch)) for w in range(4)]
        added, errors = add_together(pg_url, orders)
        assert errors == []
        # the shared 300 are new in the first round only, each round's own 50 once
        assert sum(added) == (350 if n == 0 else 50)
    check = AlertStore(pg_url)
    assert check.count() == 300 + 5 * 50
    check.close()


def _add_in_process(url: str, seed: int, start: Any, added: Any) -> None:
    store = AlertStore(url)
    mine = alerts(400)
    random.Random(seed).shuffle(mine)
    start.wait()
    try:
        added.put(store.add(mine))
    finally:
        store.close()


def test_worker_processes_adding_the_same_alerts_store_each_once(pg_url: str) -> None:
    AlertStore(pg_url).close()
    context = multiprocessing.get_context("spawn")
    start, added = context.Barrier(2), context.Queue()  # the two add at once
    workers = [context.Process(target=_add_in_process, args=(pg_url, seed, start, added))
               for seed in range(2)]
    for w in workers:
        w.start()
    counts = [added.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    assert [w.exitcode for w in workers] == [0, 0]
    assert sum(counts) == 400
    check = AlertStore(pg_url)
    assert check.count() == 400
    check.close()
