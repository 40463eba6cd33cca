"""The wall clock: with no event arriving, drift still notices customers going quiet; but
a feed silent for longer than the clock's lead is a broken feed, not every customer lost."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sia.cli.demo import DATASETS, load
from sia.events.models import Event

from .conftest import server_settings, serving
from .test_live import all_alerts, post_all, shifted


@pytest.fixture(scope="module")
def retail() -> list[Event]:
    return load(DATASETS[0])[0]


def clock_of(server: Any) -> datetime:
    """The engine's clock, as its status says."""
    clock = server.status()["clock"]
    return datetime.fromisoformat(clock) if clock else datetime.min.replace(tzinfo=UTC)


def wait_for(condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_ticks_fire_drift_when_no_event_arrives(tmp_path: Path, retail: list[Event]) -> None:
    end = datetime.now(UTC) - timedelta(days=45)  # the feed's last event, 45 days ago
    events = shifted(retail, end)
    settings = server_settings(serve_clock="wall", serve_tick_seconds=0.1,
                               serve_clock_lead_days=365.0)
    with serving(tmp_path / "data", settings) as server:
        with server.engine_paused():  # everything accepted before the first tick can run
            post_all(server, events)
        server.wait_learned()
        wait_for(lambda: clock_of(server) >= datetime.now(UTC) - timedelta(days=1))
        time.sleep(0.5)
        after = [a for a in all_alerts(server, detector="drift")
                 if a["occurred_at"] > end.isoformat()]
    assert len(after) >= 10  # customers who went quiet since the feed's last event
    assert {a["kind"] for a in after} >= {"overdue"}
    recent = [a for a in after if a["occurred_at"] >= (datetime.now(UTC)
                                                       - timedelta(days=2)).isoformat()]
    assert all(a["status"] != "history" for a in recent)  # these go to people


def test_the_clock_stops_its_lead_past_the_newest_event(tmp_path: Path,
                                                        retail: list[Event]) -> None:
    end = datetime.now(UTC) - timedelta(days=45)
    settings = server_settings(serve_clock="wall", serve_tick_seconds=0.1,
                               serve_clock_lead_days=3.0)
    with serving(tmp_path / "data", settings) as server:
        with server.engine_paused():
            post_all(server, shifted(retail, end))
        server.wait_learned()
        wait_for(lambda: clock_of(server) >= end + timedelta(days=2))
        time.sleep(1.0)  # many ticks later
        assert clock_of(server) <= end + timedelta(days=3)
        newest = max(a["occurred_at"] for a in all_alerts(server))
    assert newest <= (end + timedelta(days=3)).isoformat()
