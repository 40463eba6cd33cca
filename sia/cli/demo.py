"""`sia demo`: real and sample sales data through every detector, in seconds.

Each bundled dataset is replayed through its own engine (their years do not overlap:
one stream would make every customer of the earlier data look lost).
"""

from __future__ import annotations

import importlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import IO, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sia.alerts.store import AlertStore
from sia.catalog import Catalog
from sia.cli.common import build, console, show_alerts
from sia.delivery.notifiers import redirected
from sia.delivery.service import Delivery, TreeRouter
from sia.delivery.tables import AlertRoute, OutboxMessage
from sia.delivery.worker import DeliveryWorker
from sia.engine.engine import Engine
from sia.events.models import Event, parse_event
from sia.events.reader import RejectSink
from sia.importers.online_retail import ImportReport
from sia.notifiers.registry import build_notifier
from sia.policy import Alert
from sia.routing import load_routes
from sia.service.replay import run
from sia.settings import get_settings

SAMPLE = "online_retail_sample.csv.gz"
DEMO_DB = "sia-demo.db"
DEMO_DELIVERIES = "sia-demo-deliveries.txt"


@dataclass(frozen=True)
class DemoData:
    """A bundled dataset and the importer that turns it into events."""

    title: str
    path: str  # under sia/data
    importer: str  # module with convert(path, report)


DATASETS = (
    DemoData("Online Retail (UCI): real invoices of a UK wholesaler, Dec 2010 to Dec 2011",
             SAMPLE, "sia.importers.online_retail"),
    DemoData("Superstore (Tableau sample): US office supplies with profit and discount, "
             "2019 to 2022", "superstore", "sia.importers.superstore"),
    DemoData("CRM Sales Opportunities (Maven Analytics sample): a B2B pipeline with agents "
             "and managers, 2016 to 2017", "crm_sales_opportunities",
             "sia.importers.crm_opportunities"),
)


def data_path(name: str) -> Path:
    """A file or folder bundled in sia/data."""
    return Path(str(resources.files("sia") / "data" / name))


def sample_path() -> Path:
    """The bundled sample of the UCI Online Retail data."""
    return data_path(SAMPLE)


def load(data: DemoData) -> tuple[list[Event], ImportReport]:
    """A bundled dataset's events, validated (importers write only valid events)."""
    report = ImportReport()
    module = importlib.import_module(data.importer)
    convert: Callable[[Path, ImportReport], Iterator[dict[str, Any]]] = module.convert
    return [parse_event(e) for e in convert(data_path(data.path), report)], report


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


class _DemoDelivery:
    """Delivers each dataset's last week in event time, through every noise control."""

    def __init__(self, store: AlertStore, deliveries: Path) -> None:
        from sia.delivery.notifiers import destination, notifiers_from

        settings = get_settings()
        self.store = store
        self.to = destination(settings)
        self.deliveries = deliveries
        self._file: IO[str] | None = None
        notifiers = notifiers_from(settings)
        if self.to.channel == "console":
            self._file = deliveries.open("w", encoding="utf-8")
            notifiers["console"] = build_notifier("console", {"stream": self._file})
        self.worker = DeliveryWorker(store, notifiers, max_attempts=settings.max_attempts)
        self.sent = 0
        self.archived = 0

    def last_week(self, catalog: Catalog, end: datetime) -> None:
        """Route, plan and send the alerts of the week before `end`, hour by hour."""
        start = end - timedelta(days=7)
        self.archived += self.store.archive_before(start)
        delivery = Delivery(self.store, catalog, {}, worker=self.worker,
                            router=redirected(TreeRouter(load_routes()), self.to))
        now = start
        while now <= end + timedelta(days=1):  # a day more: the last digests go out
            self.sent += delivery.step(now).sent
            now += timedelta(hours=1)

    def summary(self) -> str:
        """What was delivered, and where."""
        if self._file is not None:
            self._file.close()
        with Session(self.store.engine) as session:
            kinds = dict(session.execute(select(OutboxMessage.kind, func.count()).group_by(
                OutboxMessage.kind)).all())
            shed = session.scalar(select(func.count()).select_from(AlertRoute).where(
                AlertRoute.disposition == "shed")) or 0
        where = (f"written to {self.deliveries}" if self.to.channel == "console"
                 else f"sent to {self.to.channel} {self.to.address}")
        parts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        return (f"Delivered the last week of each dataset: {self.sent} messages ({parts}; "
                f"{shed} alerts over a rep's daily budget went to a digest), {where}; "
                f"{self.archived:,} older alerts kept as history. Set SIA_SLACK_TOKEN and "
                "SIA_SLACK_CHANNEL, SIA_SMTP_HOST and SIA_EMAIL_TO, or SIA_WEBHOOK_URL and "
                "SIA_WEBHOOK_SECRET to deliver there instead.")


def run_demo(*, db: str, top: int, config: Path | None, policy_file: Path | None) -> None:
    """Replay each bundled dataset, store alerts, print the best ones per detector."""
    started = time.perf_counter()
    build(config, policy_file)  # a configuration error stops the demo before any work
    _fresh_demo_store(db)
    deliveries = Path(DEMO_DELIVERIES)
    console.print("[bold]SIA demo[/]: three datasets through every detector "
                  "(attribution in sia/data/ATTRIBUTION.md)")
    loaded = []
    with console.status("reading the bundled data"):
        for data in DATASETS:
            events, report = load(data)
            loaded.append((data, events))
            console.print(f"  {data.title}: {report.lines()[0]}", highlight=False)
    alerts: list[Alert] = []
    store = AlertStore(db)
    total_events = 0
    outbox = _DemoDelivery(store, deliveries)
    progress = Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("events"), TimeElapsedColumn(), console=console)
    with progress:
        task = progress.add_task("replay", total=sum(len(e) for _, e in loaded))
        for _, events in loaded:
            detectors, policy = build(config, policy_file)  # fresh learning per dataset
            engine = Engine(detectors)
            summary = run(events, engine=engine, policy=policy, sink=RejectSink(None),
                          store=store, on_alert=alerts.append,
                          on_record=lambda: progress.advance(task))
            total_events += summary.events
            if engine.clock is not None:
                outbox.last_week(engine.catalog, engine.clock)
    stored = store.count()
    store.close()
    by_detector: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        by_detector[alert.finding.detector].append(alert)
    for name, group in sorted(by_detector.items()):
        best = _best_of_each_kind(group, top)
        show_alerts(best, f"{name}: {len(group):,} alerts, the {len(best)} with most at stake")
    counts = ", ".join(f"{name} {len(group):,}" for name, group in sorted(by_detector.items()))
    console.print(
        f"{total_events:,} events, {len(alerts):,} alerts ({counts}), {stored:,} stored in "
        f"{db}, in {time.perf_counter() - started:.1f} s. Try: sia alerts --db {DEMO_DB} "
        "--detector drift", highlight=False)
    console.print(outbox.summary(), highlight=False)
