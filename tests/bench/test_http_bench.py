"""`sia bench --http` on a slice of the bundled sample: real servers, real numbers.

Only the shape of the result and counts that must hold are checked, never a speed: the
goals live in the benchmark's output (docs/BENCHMARKS.md), not in timed tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sia.cli import app
from sia.cli.demo import sample_path
from sia.events.models import parse_event
from sia.importers.online_retail import convert

SLICE = 5000  # events: the first eight months or so of the sample


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One `sia bench --http --json` run on the slice (about 45 s)."""
    events = [parse_event(e) for e in convert(sample_path())][:SLICE]
    path = tmp_path_factory.mktemp("http-bench") / "events.jsonl"
    path.write_text("".join(e.model_dump_json() + "\n" for e in events))
    outcome = CliRunner().invoke(app, ["bench", "--http", "--json", "--events", str(path),
                                       "--repeat", "1", "--seconds", "2"])
    assert outcome.exit_code == 0, outcome.output
    data: dict[str, Any] = json.loads(outcome.stdout)
    return data


def _latency_is_real(latency: dict[str, float]) -> None:
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]


def test_every_event_sent_is_accepted_and_learned(result: dict[str, Any]) -> None:
    assert result["events"] == SLICE
    assert set(result["ingest"]) == set(result["ingest_engine_off"]) == {"100", "500"}
    for batch, run in (*result["ingest"].items(), *result["ingest_engine_off"].items()):
        assert run["batch"] == int(batch) and run["clients"] == 4
        assert run["events_sent"] == run["accepted"] == SLICE
        assert run["duplicates"] == run["rejected"] == 0
        assert run["requests"] == -(-SLICE // int(batch))
        assert run["accepted_events_per_s"] > 0 and run["server_cpu_s_posting"] > 0
        _latency_is_real(run["latency_ms"])
    for run in result["ingest"].values():  # the live engine learned every one of them
        assert run["engine_events"] == SLICE
        assert run["live_engine_events_per_s"] > 0
        assert run["http_to_engine"] == pytest.approx(
            run["accepted_events_per_s"] / result["engine"]["events_per_s"], abs=1e-3)


def test_paced_and_event_to_send_runs_are_real(result: dict[str, Any]) -> None:
    assert result["engine"]["events_per_s"] > 0
    paced = result["paced"]
    assert paced["target_events_per_s"] == round(result["engine"]["events_per_s"] / 2)
    half_http = result["paced_share_of_http"]
    assert half_http["target_events_per_s"] == round(
        result["ingest"]["100"]["accepted_events_per_s"] / 2)
    for run in (paced, half_http):
        assert run["accepted"] == run["events_sent"] > 0
        assert run["engine_events"] == run["events_sent"]
        _latency_is_real(run["latency_ms"])
        assert run["latency_ms_from_due"]["p50"] > 0
    send = result["event_to_send"]
    assert send["accepted"] == send["events_sent"] == 400  # 2 s at 200 events/s
    assert send["warm_up_events"] == SLICE - 400
    assert send["engine_events"] == SLICE
    assert send["delivery"]["dead"] == 0
    assert send["alerts_traced"] > 0 and send["messages"] > 0
    _latency_is_real(send["latency_ms_from_request_sent"])
    assert send["stages_ms"]["alerts"] == send["alerts_traced"]  # each in the server's store
    assert send["stages_ms"]["message_planned_to_received"]["p50"] > 0
    assert send["latency_ms_from_request_answered"]["p50"] \
        < send["latency_ms_from_request_sent"]["p50"]


def test_goals_machine_and_code_are_reported(result: dict[str, Any]) -> None:
    assert set(result["goals"]) == {"http_to_engine", "paced_p99_ms", "event_to_send_p99_ms"}
    for goal in result["goals"].values():
        assert isinstance(goal["met"], bool) and goal["value"] is not None and goal["goal"]
    assert result["goals"]["http_to_engine"]["value"] == min(
        r["http_to_engine"] for r in result["ingest"].values())
    assert result["machine"]["cpu_count"] == os.cpu_count()
    commit = result["code"]["commit"]
    assert commit is None or len(commit) == 40
    assert result["source"].endswith("events.jsonl")


def test_conflicting_options_are_refused(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(app, ["bench", "--http", "--kafka", "--sample"])
    assert outcome.exit_code == 2
    assert "not with --kafka" in outcome.output
    outcome = CliRunner().invoke(app, ["bench", "--http", "--batches", "100,5000",
                                       "--sample"])
    assert outcome.exit_code == 2
    assert "from 1 to 1,000" in outcome.output
