"""Run the measurements behind docs/BENCHMARKS.md and docs/EVALUATION.md, and keep them.

    python scripts/measure.py --list
    python scripts/measure.py engine evaluate-online-retail      # some
    python scripts/measure.py all                                 # every one (about 50 min)

Each measurement is one `sia` command with `--json`, run as a user runs it. Its output is
written to docs/results/<name>.json with the command, the commit, the date and the machine
(CPUs, memory, load average before and after), and its headline figures are appended to
docs/results/history.csv (one row per figure). `python scripts/gen_docs.py` then renders
the current tables in the docs from these files; nothing in the docs tables is typed by
hand.

The shared datasets are found in SIA_DATASETS or ../shared/datasets; the evaluation events
files are imported once into build/datasets/.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
HISTORY = RESULTS / "history.csv"
IMPORTED = ROOT / "build" / "datasets"


@dataclass(frozen=True)
class Dataset:
    """A shared dataset and the importer that turns it into events (or, without a
    source, the command that generates them, with its arguments)."""

    importer: str
    source: str | None
    events: str
    args: tuple[str, ...] = ()


DATASETS = {
    "online-retail": Dataset("online-retail", "online_retail/online_retail.csv.gz",
                             "online_retail.jsonl.gz"),
    "superstore": Dataset("superstore", "superstore", "superstore.jsonl.gz"),
    "crm-opportunities": Dataset("crm-opportunities", "crm_sales_opportunities",
                                 "crm_opportunities.jsonl.gz"),
    # CDNOW's shape, written by customer as CDNOW's file is (sia/importers/bgnbd.py)
    "rare-buyers": Dataset("bgnbd", None, "rare_buyers.jsonl.gz",
                           ("--seed", "1", "--order", "customer")),
}


@dataclass(frozen=True)
class Measurement:
    """One `sia` command whose JSON answer is kept; `{dataset}` names an events file."""

    name: str
    args: tuple[str, ...]
    about: str
    dataset: str | None = None


MEASUREMENTS = [
    Measurement("engine", ("bench", "--json"),
                "engine events/s against the bare detector arithmetic, full online retail"),
    Measurement("http", ("bench", "--http", "--json"),
                "real `sia serve` processes over HTTP beside the engine"),
    Measurement("preview", ("bench", "--preview", "--json"),
                "threshold previews against a full replay"),
    Measurement("preview-500k", ("bench", "--preview", "--json", "--copies", "17"),
                "threshold previews on online retail with every customer copied 17 times "
                "(514,420 events: the 500k learning-change goal)"),
    Measurement("console", ("bench", "--console", "--json"),
                "server time of every console page"),
    Measurement("delivery", ("bench", "--delivery", "--json"),
                "alert stored to webhook received, at a steady event rate"),
    Measurement("kafka", ("bench", "--kafka", "--json"),
                "raw aiokafka, a no-op Faust agent and real workers, in one run"),
    *[Measurement(f"evaluate-{name}", ("evaluate", "{dataset}", "--horizon", "90d", "--json"),
                  f"detector quality on {name}, 90-day horizon", name)
      for name in DATASETS],
    Measurement("evaluate-online-retail-p4",
                ("evaluate", "{dataset}", "--horizon", "90d", "--json", "--partitions", "4",
                 "--share-population"),
                "online retail judged as a Kafka deployment of 4 partitions sharing "
                "population models", "online-retail"),
]
# a threshold swept on online retail: what `sia evaluate --set` (and a preview) shows a manager
SWEEPS = {"drift": ("lost_probability", ("0.7", "0.85", "0.9")),
          "cross_sell": ("min_confidence", ("0.2", "0.4"))}
MEASUREMENTS += [
    Measurement(f"sweep-{detector}-{key}-{value}",
                ("evaluate", "{dataset}", "--horizon", "90d", "--json", "--only", detector,
                 "--set", f"{detector}.{key}={value}"),
                f"online retail with {detector}.{key}={value}", "online-retail")
    for detector, (key, values) in SWEEPS.items() for value in values]
BY_NAME = {m.name: m for m in MEASUREMENTS}


def datasets_root() -> Path:
    """Where the shared datasets are."""
    env = os.environ.get("SIA_DATASETS")
    for root in [Path(env)] if env else [ROOT.parent / "shared" / "datasets",
                                         ROOT.parent.parent / "shared" / "datasets"]:
        if root.exists():
            return root
    sys.exit("shared datasets not found: set SIA_DATASETS to the datasets folder")


def events_file(name: str) -> Path:
    """The dataset's events, imported once."""
    dataset = DATASETS[name]
    out = IMPORTED / dataset.events
    if not out.exists():
        IMPORTED.mkdir(parents=True, exist_ok=True)
        source = [] if dataset.source is None else [str(datasets_root() / dataset.source)]
        run_sia(["import", dataset.importer, *source, *dataset.args, "-o", str(out)],
                capture=False)
    return out


def run_sia(args: list[str], capture: bool = True) -> str:
    """`sia ARGS` in this checkout's Python; the output when `capture`."""
    done = subprocess.run([sys.executable, "-m", "sia", *args], cwd=ROOT, text=True,
                          stdout=subprocess.PIPE if capture else None, check=False)
    if done.returncode != 0:
        sys.exit(f"sia {' '.join(args)} failed with exit code {done.returncode}")
    return done.stdout or ""


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, text=True, capture_output=True,
                          check=True).stdout.strip()


def machine() -> dict[str, Any]:
    """What the figures ran on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text()
                      .splitlines() if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        mem_kb = 0
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gb": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "system": platform.platform(terse=True)}


def measure(m: Measurement) -> dict[str, Any]:
    """Run one measurement and return its record."""
    args = [events_file(m.dataset) if a == "{dataset}" and m.dataset else a for a in m.args]
    shown = ["sia", *[f"{Path(a).name}" if isinstance(a, Path) else a for a in args]]
    load_before = os.getloadavg()
    started = time.monotonic()
    print(f"== {m.name}: {' '.join(shown)}", file=sys.stderr, flush=True)
    out = run_sia([str(a) for a in args])
    elapsed = time.monotonic() - started
    return {
        "name": m.name, "about": m.about, "command": " ".join(shown),
        "commit": git("rev-parse", "--short", "HEAD"),
        "modified": bool(git("status", "--porcelain", "--untracked-files=no", "sia")),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine(), "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "elapsed_s": round(elapsed, 1),
        "result": json.loads(out),
    }


def headlines(record: dict[str, Any]) -> Iterator[tuple[str, float]]:
    """The figures kept in the history: per detector alerts, precision and the baseline's
    precision; for a bench, the numbers at the top of its answer, every goal's value, and
    the rate of each Kafka loop."""
    result = record["result"]
    if record["name"].startswith(("evaluate", "sweep")):
        for detector, row in sorted(result.get("detectors", {}).items()):
            for key in ("alerts", "precision"):
                if _number(row.get(key)):
                    yield f"{detector}.{key}", row[key]
            base = row.get("baseline") or {}
            if _number(base.get("precision")):
                yield f"{detector}.baseline_precision", base["precision"]
        return
    for key, value in result.items():
        if _number(value):
            yield key, value
    for key, g in result.get("goals", {}).items():
        if _number(g.get("value")):
            yield f"goals.{key}", g["value"]
    if _number((result.get("engine") or {}).get("engine_events_per_s")):
        yield "engine.engine_events_per_s", result["engine"]["engine_events_per_s"]
    for loop in ("raw", "noop"):
        if _number((result.get(loop) or {}).get("events_per_s")):
            yield f"{loop}.events_per_s", result[loop]["events_per_s"]
    for run in result.get("sia", []) if isinstance(result.get("sia"), list) else []:
        for key in ("events_per_s", "events_per_worker_cpu_s"):
            if _number(run.get(key)):
                yield f"sia.workers_{run['workers']}.{key}", run[key]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def keep(record: dict[str, Any], write: bool = True) -> None:
    """Write the record and add its headline figures to the history."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{record['name']}.json"
    if write:
        path.write_text(json.dumps(record, indent=2) + "\n")
    new = not HISTORY.exists()
    with HISTORY.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(["date", "commit", "measurement", "figure", "value"])
        for figure, value in headlines(record):
            writer.writerow([record["date"][:10], record["commit"], record["name"], figure,
                             value])
    if write:
        print(f"   kept {path.relative_to(ROOT)} ({record['elapsed_s']} s)", file=sys.stderr)


def rebuild_history() -> None:
    """The kept results' rows of the history written again (after the rules for headline
    figures changed); rows of earlier runs, whose results are no longer kept, stay."""
    records = [json.loads(path.read_text()) for path in sorted(RESULTS.glob("*.json"))]
    kept = {(r["date"][:10], r["commit"], r["name"]) for r in records}
    earlier: list[list[str]] = []
    if HISTORY.exists():
        with HISTORY.open(newline="") as f:
            earlier = [row for row in list(csv.reader(f))[1:] if tuple(row[:3]) not in kept]
    with HISTORY.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["date", "commit", "measurement", "figure", "value"])
        writer.writerows(earlier)
    for record in records:
        keep(record, write=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="measurements to run, or `all`")
    parser.add_argument("--list", action="store_true", help="list the measurements")
    parser.add_argument("--rebuild-history", action="store_true",
                        help="write docs/results/history.csv again from the kept results")
    options = parser.parse_args()
    if options.rebuild_history:
        rebuild_history()
        return
    if options.list or not options.names:
        for m in MEASUREMENTS:
            print(f"{m.name:28} {m.about}")
        return
    names = [m.name for m in MEASUREMENTS] if options.names == ["all"] else options.names
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        sys.exit(f"unknown measurement(s) {', '.join(unknown)}: see --list")
    for name in names:
        keep(measure(BY_NAME[name]))


if __name__ == "__main__":
    main()
