"""`sia demo`: a year of real transactions through the detectors, in seconds."""

from __future__ import annotations

import time
from collections import defaultdict
from importlib import resources
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sia.alerts.store import AlertStore
from sia.cli.common import build, console, show_alerts
from sia.engine.engine import Engine
from sia.events.models import Event, parse_event
from sia.events.reader import Reject, RejectSink
from sia.importers.online_retail import ImportReport, convert
from sia.policy import Alert
from sia.transports.embedded import run

SAMPLE = "online_retail_sample.csv.gz"
DEMO_DB = "sia-demo.db"


def sample_path() -> Path:
    """The bundled sample of the UCI Online Retail data."""
    return Path(str(resources.files("sia") / "data" / SAMPLE))


def load_sample() -> tuple[list[Event | Reject], ImportReport]:
    """Sample events, validated (the importer writes only valid events)."""
    report = ImportReport()
    events: list[Event | Reject] = [parse_event(e) for e in convert(sample_path(), report)]
    return events, report


def _best_of_each_kind(alerts: list[Alert], top: int) -> list[Alert]:
    """The `top` alerts with most at stake, taking each kind of finding in turn."""
    by_kind: dict[str, list[Alert]] = defaultdict(list)
    for alert in sorted(alerts, key=lambda a: (-a.finding.severity.rank, -a.finding.value,
                                               a.alert_id)):
        by_kind[alert.finding.kind].append(alert)
    chosen: list[Alert] = []
    while len(chosen) < top and any(by_kind.values()):
        for kind in sorted(by_kind):
            if by_kind[kind] and len(chosen) < top:
                chosen.append(by_kind[kind].pop(0))
    return chosen


def _fresh_demo_store(db: str) -> None:
    """Each demo starts from an empty store (only the demo's own SQLite file is removed)."""
    prefix = "sqlite:///"
    if db.startswith(prefix) and Path(db[len(prefix):]).name == DEMO_DB:
        for suffix in ("", "-wal", "-shm"):
            Path(db[len(prefix):] + suffix).unlink(missing_ok=True)


def run_demo(*, db: str, top: int, config: Path | None, policy_file: Path | None) -> None:
    """Replay the sample, store alerts, print the best ones per detector."""
    started = time.perf_counter()
    console.print("[bold]SIA demo[/]: replaying a sample of the UCI Online Retail data "
                  "(real invoices of a UK wholesaler, Dec 2010 to Dec 2011; attribution in "
                  "sia/data/ATTRIBUTION.md)")
    with console.status("reading the sample"):
        events, report = load_sample()
    console.print(report.lines()[0], highlight=False)
    detectors, policy = build(config, policy_file)
    _fresh_demo_store(db)
    engine = Engine(detectors)
    alerts: list[Alert] = []
    store = AlertStore(db)
    progress = Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("events"), TimeElapsedColumn(), console=console,
                        transient=False)
    with progress:
        task = progress.add_task("replay", total=len(events))
        summary = run(events, engine=engine, policy=policy, sink=RejectSink(None),
                      store=store, on_alert=alerts.append,
                      on_record=lambda: progress.advance(task))
    store.close()
    by_detector: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        by_detector[alert.finding.detector].append(alert)
    for name, group in sorted(by_detector.items()):
        best = _best_of_each_kind(group, top)
        show_alerts(best, f"{name}: {len(group):,} alerts, the {len(best)} with most at stake")
    elapsed = time.perf_counter() - started
    console.print(
        f"{summary.events:,} events, {sum(summary.findings.values()):,} findings, "
        f"{len(alerts):,} alerts ({', '.join(f'{k} {v:,}' for k, v in summary.alerts.items())})"
        f", {summary.stored:,} newly stored in {db}, in {elapsed:.1f} s. "
        "Try: sia alerts --db sia-demo.db --detector drift", highlight=False)
