"""`sia bench --preview`: a short run on a slice of the bundled sample gives real,
consistent figures (not timing goals: the machine is shared)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from sia.cli import app

from .sliced import bench_on_sample

UNTIL = datetime(2011, 7, 1, tzinfo=UTC)  # the sample's first seven months: a short run


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return bench_on_sample(tmp_path_factory.mktemp("preview-bench"), UNTIL, "--preview",
                           "--days", "30")


def test_the_full_replay_reads_the_whole_fresh_journal(result: dict[str, Any]) -> None:
    sliced = result["sliced"]
    assert result["events"] == result["journal"]["events"] == sliced
    assert result["full_replay"]["events"] == sliced
    assert result["full_replay"]["seconds"] > 0 and result["full_replay"]["alerts"] > 0
    assert 0 < result["journal"]["window_events"] < sliced
    assert result["days"] == 30 and result["source"].endswith("events.jsonl")


def test_every_preview_is_timed_against_the_full_replay(result: dict[str, Any]) -> None:
    reference = result["full_replay"]["seconds"]
    runs = [result["firing_change"]["first_call"], result["firing_change"]["cached_call"],
            result["learning_change"], result["firing_change"]["next_value"],
            result["policy_change"], result["shared_learning_change"]]
    for run in runs:
        assert run["seconds"] > 0 and 0 < run["elapsed_s_reported"] <= run["seconds"]
        assert run["ratio_to_full_replay"] == pytest.approx(run["seconds"] / reference,
                                                            rel=0.01, abs=0.002)
        assert run["alerts_before"] - run["removed"] + run["added"] == run["alerts_after"]
        assert 0 <= run["judged_before"] <= run["alerts_before"]
        assert 0 <= run["judged_after"] <= run["alerts_after"]
    first, cached = runs[0], runs[1]
    # the same preview twice: the same answer, the second from what the first learned
    assert {k: first[k] for k in ("alerts_before", "alerts_after", "added", "removed")} == \
        {k: cached[k] for k in ("alerts_before", "alerts_after", "added", "removed")}
    assert "kept from an earlier preview" in cached["method"]["before_the_window"]
    assert "kept from an earlier preview" not in first["method"]["before_the_window"]
    learning = result["learning_change"]
    assert learning["alerts_before"] == first["alerts_before"]
    # another value re-runs drift alone; the policy change runs no detector
    nexts, policy = result["firing_change"]["next_value"], result["policy_change"]
    assert nexts["method"]["proposed_run"].startswith("drift learned the window again")
    assert nexts["method"]["current_run"] == "kept from an earlier preview"
    assert "no detector ran" in policy["method"]["proposed_run"]
    shared = result["shared_learning_change"]["method"]["proposed_run"]
    assert shared.startswith("drift learned the whole journal again")
    assert policy["alerts_after"] <= policy["alerts_before"] and policy["added"] == 0


def test_goals_are_flags_of_the_measurements(result: dict[str, Any]) -> None:
    firing, learning = result["goals"]["firing_change_s"], result["goals"]["learning_change_s"]
    assert firing["value"] == result["firing_change"]["next_value"]["seconds"]
    assert firing["first_call_value"] == result["firing_change"]["first_call"]["seconds"]
    assert firing["met"] is False  # 30 days is not the goal's 90, whatever the time
    assert learning["value"] == result["learning_change"]["seconds"]
    assert learning["goal_measured"] is False and learning["met"] is None
    assert learning["met_on_these_events"] == (learning["value"] <= 60)
    assert "not measured" in learning["note"]
    assert result["machine"]["cpu_count"] == os.cpu_count()
    assert len(result["machine"]["load_average_at_start"]) == 3


def test_preview_is_refused_with_the_other_modes() -> None:
    outcome = CliRunner().invoke(app, ["bench", "--preview", "--http", "--sample"])
    assert outcome.exit_code == 2 and "not with --http" in outcome.output
