"""The preview worker warms itself: a server learns what the next threshold preview
needs at start and whenever the journal has grown, so the first preview a manager asks
for costs what a later one does, not a cold start."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sia.cli.demo import DATASETS, load

from .conftest import Server, server_settings, serving
from .test_live import post_all
from .test_preview import CHANGE, preview


def _warmed(server: Server, through: int, timeout: float = 240.0) -> dict[str, Any]:
    """/v1/status's warm-up once it reached journal seq `through`."""
    deadline = time.monotonic() + timeout
    while True:
        with server.client("admin") as client:
            warm = client.get("/v1/status").json()["preview_warm_up"]
        if warm and (warm.get("through_seq") == through or "error" in warm):
            return dict(warm)
        assert time.monotonic() < deadline, f"not warmed through seq {through}: {warm}"
        time.sleep(0.2)


def test_a_server_warms_its_preview_worker_at_start_and_when_the_journal_grows(
        tmp_path: Path) -> None:
    events = [e.model_dump(mode="json") for e in load(DATASETS[0])[0]]
    settings = server_settings(serve_preview_warm_seconds=0.5)
    with serving(tmp_path / "data", settings=settings) as server:
        with server.client("admin") as client:  # an empty journal: nothing to learn yet
            assert client.get("/v1/status").json()["preview_warm_up"] is None
        post_all(server, events[:-300])
        warm = _warmed(server, server.runtime.journal.newest_seq())
        assert "error" not in warm and warm["seconds"] > 0
        post_all(server, events[-300:])  # grows: warmed again, through the newest
        newest = server.runtime.journal.newest_seq()
        _warmed(server, newest)
        result = preview(server, "manager_uk", CHANGE).json()
        method = result["method"]
        assert "kept from an earlier preview" in method["before_the_window"]
        assert method["current_run"] == "kept from an earlier preview"
        assert "earlier preview" in method["precision"]
        assert result["window"]["through_seq"] == newest
        assert result["removed"]["count"] > 0
    with serving(tmp_path / "data", settings=settings) as server:  # a restart: at start
        warm = _warmed(server, newest)
        assert "error" not in warm
        method = preview(server, "manager_uk", CHANGE).json()["method"]
        assert "kept from an earlier preview" in method["before_the_window"]


def test_a_backfill_is_warmed_for_once_it_is_over_not_every_ten_minutes_later(
        tmp_path: Path) -> None:
    """A server started on an empty folder and then sent a backfill warms up once the
    journal stops growing (one look, ten seconds, without a new entry), not only when
    the ten-minute period comes round."""
    events = [e.model_dump(mode="json") for e in load(DATASETS[0])[0]]
    settings = server_settings(serve_preview_warm_seconds=3600.0)
    with serving(tmp_path / "data", settings=settings) as server:
        post_all(server, events)
        warm = _warmed(server, server.runtime.journal.newest_seq(), timeout=120.0)
        assert "error" not in warm


def test_without_warm_ups_the_first_preview_learns_everything(tmp_path: Path) -> None:
    events = [e.model_dump(mode="json") for e in load(DATASETS[0])[0]]
    with serving(tmp_path / "data", settings=server_settings()) as server:
        post_all(server, events)
        time.sleep(1.0)
        with server.client("admin") as client:
            assert client.get("/v1/status").json()["preview_warm_up"] is None
        method = preview(server, "manager_uk", CHANGE).json()["method"]
        assert "kept from an earlier preview" not in method["before_the_window"]
