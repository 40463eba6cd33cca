"""`sia bench --console`: a short run on a slice of the bundled sample gives real,
consistent figures (not timing goals: the machine is shared)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from sia.bench.console_bench import INVALID, PAGE_GOAL_MS, PREVIEW_GOAL_S
from sia.cli import app

from .sliced import bench_on_sample

UNTIL = datetime(2011, 5, 1, tzinfo=UTC)  # the sample's first five months: a short run
PAGES = {"inbox_rep", "inbox_manager", "team", "customer", "rejects", "thresholds",
         "thresholds_history"}


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return bench_on_sample(tmp_path_factory.mktemp("console-bench"), UNTIL, "--console",
                           "--requests", "3")


def test_the_server_learned_every_event_and_the_invalid_records(
        result: dict[str, Any]) -> None:
    assert result["events"] == result["fed"]["accepted"] == result["sliced"]
    assert result["fed"]["rejected"] == result["fed"]["invalid_posted"] == len(INVALID)
    scope = result["scope"]
    assert scope["rep_alerts"] > 0 and scope["team_alerts"] >= scope["rep_alerts"]
    assert scope["customer_alerts"] > 0 and result["source"].endswith("events.jsonl")


def test_every_page_is_measured_from_the_server_s_own_time(result: dict[str, Any]) -> None:
    pages = result["pages"]
    assert set(pages) == PAGES and result["repeat"] == 3
    for name, page in pages.items():
        assert page["requests"] == 3 and page["bytes"] > 0, name
        server, client = page["server_ms"], page["client_ms"]
        assert 0 < server["p50"] <= server["p95"] <= server["max"], name
        assert 0 < client["p50"] <= client["p95"] <= client["max"], name
        assert server["max"] <= client["max"] + 0.1, name  # the server's part of the wait
    assert pages["customer"]["path"] == f"/console/customers/{result['scope']['customer']}"
    assert pages["rejects"]["cards"] == len(INVALID)  # the page shows what was posted
    assert pages["inbox_rep"]["cards"] > 0 and pages["inbox_manager"]["cards"] > 0


def test_the_goals_follow_from_the_figures(result: dict[str, Any]) -> None:
    goal = result["goals"]["page_max_ms"]
    worst = max(p["server_ms"]["max"] for p in result["pages"].values())
    assert goal["value"] == worst == result["pages"][goal["page"]]["server_ms"]["max"]
    assert goal["met"] is (worst <= PAGE_GOAL_MS)
    previews = result["preview"]
    for call in ("first_call", "next_value"):
        preview = previews[call]
        assert 0 < preview["server_ms"] <= preview["client_ms"] + 0.1 and preview["bytes"] > 0
    assert previews["first_call"]["change"] != previews["next_value"]["change"]
    seconds = result["goals"]["preview_s"]
    assert seconds["value"] == pytest.approx(previews["next_value"]["server_ms"] / 1000,
                                             abs=0.001)
    assert seconds["met"] is (seconds["value"] <= PREVIEW_GOAL_S)
    start, end = (result["machine"][f"load_average_at_{w}"] for w in ("start", "end"))
    assert len(start) == len(end) == 3


def test_console_is_measured_alone() -> None:
    outcome = CliRunner().invoke(app, ["bench", "--console", "--preview", "--sample"])
    assert outcome.exit_code != 0 and "--console measures console pages alone" in outcome.output
