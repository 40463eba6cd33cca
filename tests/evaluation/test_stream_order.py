"""A file of history not in time order: CDNOW's shape, written by customer.

Before: `sia evaluate` replayed such a file as it came, the engine refused nearly every
event as late, and drift raised no overdue alert at all (0 judged, 0 unjudged) while the
baselines, which judge every event, looked excellent. Now the evaluation learns the
events in time order and says how many were out of it; `sia replay` says the file is
not in time order and `--sort` learns it in order.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sia.cli import app
from sia.evaluation.evaluate import evaluate
from sia.events.models import parse_event
from sia.importers.bgnbd import rare_buyers
from sia.importers.online_retail import ImportReport
from sia.service import pipeline

CUSTOMERS = 2500


def base(order: str) -> list[dict[str, object]]:
    return list(rare_buyers(ImportReport(), customers=CUSTOMERS, seed=7,
                            order="customer" if order == "customer" else "time"))


@pytest.fixture(scope="module")
def by_customer() -> list[dict[str, object]]:
    return base("customer")


def drift_report(rows: list[dict[str, object]]) -> dict[str, object]:
    detectors, policy = pipeline.build(None, None, ["drift"])
    return evaluate([parse_event(r) for r in rows], detectors, policy, horizon_days=90.0)


def test_a_base_written_by_customer_is_evaluated_as_the_same_base_in_time_order(
        by_customer: list[dict[str, object]]) -> None:
    report = drift_report(by_customer)
    assert report["out_of_order"] > 0.9 * len(by_customer)
    assert report["refused"] == {"events": 0, "first": None}
    drift = report["detectors"]["drift"]
    assert drift["alerts"] > 100  # was 0: every event after the first customer was refused
    in_time = drift_report(base("time"))
    assert in_time["out_of_order"] == 0
    assert in_time["detectors"] == report["detectors"]


def test_replay_says_a_file_is_not_in_time_order_and_sort_learns_it(
        tmp_path: Path, by_customer: list[dict[str, object]]) -> None:
    events = tmp_path / "cdnow-shaped.jsonl.gz"
    with gzip.open(events, "wt") as out:
        out.writelines(json.dumps(r) + "\n" for r in by_customer)
    runner = CliRunner()
    as_written = runner.invoke(app, ["replay", str(events), "--db", str(tmp_path / "a.db"),
                                     "--rejects", str(tmp_path / "a.jsonl"), "--json"])
    assert as_written.exit_code == 0, as_written.output
    assert "is not in time order. `sia replay --sort` learns it" in as_written.output
    summary = json.loads(as_written.output[as_written.output.index("{"):])
    assert summary["rejects"] >= summary["late"] > 0.5 * len(by_customer)
    sorted_ = runner.invoke(app, ["replay", str(events), "--sort", "--db",
                                  str(tmp_path / "b.db"), "--rejects",
                                  str(tmp_path / "b.jsonl"), "--json"])
    assert sorted_.exit_code == 0, sorted_.output
    summary = json.loads(sorted_.output[sorted_.output.index("{"):])
    assert summary["rejects"] == summary["late"] == 0
    assert summary["events"] == len(by_customer)
    assert summary["alerts"].get("drift", 0) > 100
