"""The figures in docs/BENCHMARKS.md and docs/EVALUATION.md come from kept results.

scripts/measure.py runs the measurements and keeps them in docs/results/;
scripts/results_tables.py renders the tables. These tests check that every marked table
renders from what is kept, that every kept result is a known measurement with its
provenance, and that the history holds its headline figures.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


measure = _script("measure")
tables = _script("results_tables")
KEPT = sorted((ROOT / "docs" / "results").glob("*.json"))


def test_every_marked_table_is_known_and_renders_from_the_kept_results() -> None:
    marked = [m.group("name") for page in tables.PAGES
              for m in tables.MARKED.finditer(page.read_text())]
    assert {"engine", "quality", "partitions", "kafka"} <= set(marked)
    for name in marked:
        assert name in tables.TABLES, name
        text = tables.TABLES[name]()
        assert "\n|---|" in text, name  # a table
        if name != "datasets":  # says what ran it, where and when
            assert "Measured by `sia " in text, name


def test_a_page_with_an_unknown_table_is_refused() -> None:
    with pytest.raises(KeyError, match="no table named 'nope'"):
        tables.fill("<!-- table: nope -->\n<!-- /table -->")


def test_filling_replaces_only_what_is_between_the_markers() -> None:
    page = "before\n<!-- table: datasets -->\nold figures\n<!-- /table -->\nafter\n"
    filled = tables.fill(page)
    assert filled.startswith("before\n<!-- table: datasets -->\n| dataset |")
    assert "old figures" not in filled and filled.endswith("<!-- /table -->\nafter\n")
    assert tables.fill(filled) == filled


@pytest.mark.parametrize("path", KEPT, ids=[p.stem for p in KEPT])
def test_every_kept_result_is_a_measurement_with_its_provenance(path: Path) -> None:
    record = json.loads(path.read_text())
    m = measure.BY_NAME[record["name"]]
    assert path.stem == m.name
    assert record["command"].startswith("sia " + m.args[0])
    assert re.fullmatch(r"[0-9a-f]{7,40}", record["commit"])
    assert {"cpus", "memory_gb", "python", "load_average_before"} <= set(record["machine"])
    assert list(measure.headlines(record)), "no headline figure for the history"


def test_the_history_holds_every_kept_results_figures() -> None:
    with (ROOT / "docs" / "results" / "history.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["date", "commit", "measurement", "figure", "value"]
    have = {(r[0], r[1], r[2], r[3]) for r in rows[1:]}
    for path in KEPT:
        record = json.loads(path.read_text())
        for figure, _ in measure.headlines(record):
            assert (record["date"][:10], record["commit"], record["name"], figure) in have


def test_headlines_skip_flags_and_pick_goals_and_kafka_loops() -> None:
    record = {"name": "kafka", "result": {
        "ok": True, "events": 10, "goals": {"x": {"value": 0.5, "met": True}},
        "raw": {"events_per_s": 100}, "sia": [{"workers": 2, "events_per_s": 7,
                                                "events_per_worker_cpu_s": 9}]}}
    assert dict(measure.headlines(record)) == {
        "events": 10, "goals.x": 0.5, "raw.events_per_s": 100,
        "sia.workers_2.events_per_s": 7, "sia.workers_2.events_per_worker_cpu_s": 9}
