"""A running SIA service: its data folder, stores, receiver, live engine and delivery.

`sia serve` opens a `Runtime` and hands it to the HTTP app, which starts it when it
starts and stops it when it stops. The folder holds everything that must survive a
restart; a lock on it keeps a second `sia serve` away:

    sia-data/
      sia.lock         held while a server runs (pid inside)
      journal.db       accepted events, in order, and rejects (SQLite)
      sia.db           alerts, deliveries, feedback, API keys (unless SIA_DATABASE_URL)
      state/engine.snap  what the live engine learned, through which journal seq
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sia.access.keys import ApiKeys
from sia.alerts.store import AlertStore
from sia.engine.admission import TimeLimits
from sia.journal import Journal
from sia.service.customers import customer_view
from sia.service.engine_process import EngineProcess, EngineSpec
from sia.service.feedback import FeedbackDesk
from sia.service.ingest import JournalReceiver, Receiver
from sia.service.live import LiveOptions
from sia.service.preview import PreviewPool, PreviewRequest
from sia.service.state import FileLock
from sia.service.thresholds import Running, ThresholdDesk, Validated, config_from_files
from sia.settings import Settings
from sia.thresholds.versions import Versions

log = logging.getLogger("sia.service")


@dataclass(frozen=True)
class DataDir:
    """Where a service keeps its files."""

    root: Path

    @property
    def journal_url(self) -> str:
        """The journal's SQLite file."""
        return f"sqlite:///{(self.root / 'journal.db').resolve()}"

    def store_url(self, settings: Settings) -> str:
        """SIA_DATABASE_URL when set, else the folder's sia.db."""
        if "database_url" in settings.model_fields_set:
            return settings.database_url
        return f"sqlite:///{(self.root / 'sia.db').resolve()}"

    @property
    def state(self) -> Path:
        """The live engine's snapshot."""
        return self.root / "state" / "engine.snap"

    def lock(self) -> FileLock:
        """The lock a running server holds."""
        return FileLock(self.root / "sia.lock", what=f"data folder {self.root}")


def open_keys(data_dir: Path, settings: Settings, *,
              create: bool = True) -> tuple[ApiKeys, AlertStore]:
    """The API keys of a data folder (for `sia keys`, with or without a server); with
    `create` false, a folder or store that is not there raises NoStore and nothing is
    made (`sia keys list`, `sia keys revoke`)."""
    folder = DataDir(data_dir)
    if create:
        data_dir.mkdir(parents=True, exist_ok=True)
    store = AlertStore(folder.store_url(settings), create=create)
    return ApiKeys(store), store


def time_limits(settings: Settings) -> TimeLimits:
    """How far ahead and behind events may be dated (SIA_EVENT_MAX_*)."""
    return TimeLimits(max_ahead=timedelta(hours=settings.event_max_ahead_hours),
                      max_late=timedelta(days=settings.event_max_late_days))


@dataclass
class Runtime:
    """Everything a running service holds, started and stopped together."""

    settings: Settings
    data_dir: Path
    store: AlertStore
    journal: Journal
    keys: ApiKeys
    receiver: Receiver
    feedback: FeedbackDesk
    thresholds: ThresholdDesk
    limits: TimeLimits
    lock: FileLock | None = None  # the data folder's, held while the runtime is open
    engine: EngineProcess | None = None  # the live engine (embedded mode)
    previews: PreviewPool = field(default_factory=PreviewPool)
    dev: bool = False
    mode: str = "embedded"  # or "kafka"

    def start(self) -> None:
        """Start the engine process (it resumes its state, then learns and delivers)."""
        if self.engine is not None:
            self.engine.start()
        self.previews.keep_warm(self._preview_to_warm,
                                self.settings.serve_preview_warm_seconds)
        log.info("SIA service started (%s mode, data in %s)", self.mode, self.data_dir)

    def stop(self) -> None:
        """Stop the engine (it learns what is in hand and saves its state), close."""
        if self.engine is not None:
            self.engine.stop()
        self.previews.close()
        self.receiver.close()
        self.journal.close()
        self.store.close()
        if self.lock is not None:
            self.lock.release()
        log.info("SIA service stopped; state saved")

    def _preview_to_warm(self) -> tuple[int, PreviewRequest] | None:
        """The journal's newest seq and a preview of the current thresholds against
        themselves over the default 90 days, of the newest journal (None: an empty
        journal). The previews that follow within ten minutes see the journal as it did."""
        seq = self.journal.newest_seq()
        if seq == 0:
            return None
        current = self.thresholds.current().config.as_dict()
        return seq, PreviewRequest(self.journal_url, current, current, 90.0,
                                   session_s=0.0)

    def backlog(self) -> int:
        """Accepted events not yet learned."""
        return self.receiver.backlog()

    def customer(self, customer_id: str) -> dict[str, Any] | None:
        """What the service knows of a customer (None: never heard of it): the live
        engine's view, or without one (Kafka) what the journal and the store know.
        Raises `EngineUnavailable` when the engine cannot answer now."""
        if self.engine is None:
            return customer_view(customer_id, engine=None, journal=self.journal,
                                 store=self.store)
        found: dict[str, Any] | None = self.engine.customer(customer_id)
        return found

    @property
    def journal_url(self) -> str:
        """Where the journal is (previews open it read-only)."""
        return str(self.journal.engine.url.render_as_string(hide_password=False))


class EngineRunning:
    """Thresholds applied to the engine process, which keeps what it learned."""

    def __init__(self, engine: EngineProcess) -> None:
        self.engine = engine

    def check(self, validated: Validated) -> None:
        """Refuse what the engine cannot take without relearning."""
        self.engine.call("thresholds", validated.config.as_dict(), None)

    def apply(self, validated: Validated, version: int) -> str:
        """Swap them in."""
        outcome: str = self.engine.call("thresholds", validated.config.as_dict(), version)
        return outcome


def open_runtime(settings: Settings, data_dir: Path, *, config: Path | None = None,
                 policy: Path | None = None, routes: Path | None = None, dev: bool = False,
                 receiver: Callable[[Journal], Receiver] | None = None,
                 running: Callable[[Versions], Running] | None = None,
                 log_level: str = "info") -> Runtime:
    """Open a data folder's stores and build the service around them.

    The thresholds are the store's newest version; the configuration files (`config`,
    `policy`, default config/) are version 1 of a new store. Without `receiver` the
    service is embedded: events go to the journal and the engine process
    (sia/service/engine_process.py) learns from it and delivers. With one (Kafka), the
    journal only keeps event ids (duplicates) and rejects, workers elsewhere learn, and
    `running` publishes thresholds to them. Raises ConfigError for a bad configuration,
    Locked when another service has the folder open.
    """
    folder = DataDir(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = folder.lock().acquire()
    try:
        return _open(settings, folder, lock, config=config, policy=policy, routes=routes,
                     dev=dev, receiver=receiver, running=running, log_level=log_level)
    except BaseException:
        lock.release()
        raise


def _open(settings: Settings, folder: DataDir, lock: FileLock, *, config: Path | None,
          policy: Path | None, routes: Path | None, dev: bool,
          receiver: Callable[[Journal], Receiver] | None,
          running: Callable[[Versions], Running] | None, log_level: str) -> Runtime:
    data_dir = folder.root
    store_url = folder.store_url(settings)
    store = AlertStore(store_url)
    journal = Journal(folder.journal_url)
    desk = ThresholdDesk(Versions(store), seed=config_from_files(config, policy),
                         journal=journal)
    signing = settings.slack_signing_secret
    feedback = FeedbackDesk(store, feedback_secret=settings.feedback_secret.get_secret_value()
                            .encode(), slack_signing_secret=signing.get_secret_value()
                            .encode() if signing else None)
    common: dict[str, Any] = {"settings": settings, "data_dir": data_dir, "store": store,
                              "journal": journal, "keys": ApiKeys(store), "feedback": feedback,
                              "thresholds": desk, "limits": time_limits(settings), "dev": dev,
                              "lock": lock}
    if receiver is not None:
        desk.running = running(desk.versions) if running is not None else None
        return Runtime(receiver=receiver(journal), mode="kafka", **common)
    engine = EngineProcess(EngineSpec(settings=settings, journal_url=folder.journal_url,
                                      store_url=store_url, state_path=folder.state,
                                      options=live_options(settings), routes=routes,
                                      log_level=log_level), journal)
    desk.running = EngineRunning(engine)
    return Runtime(receiver=JournalReceiver(journal, backlog=engine.lag, wake=engine.wake),
                   engine=engine, **common)


def live_options(settings: Settings) -> LiveOptions:
    """The live engine's clock, snapshots and history cut-off from settings."""
    return LiveOptions(clock=settings.serve_clock, tick_seconds=settings.serve_tick_seconds,
                       clock_lead=timedelta(days=settings.serve_clock_lead_days),
                       history_after=timedelta(days=settings.delivery_max_age_days),
                       snapshot_seconds=settings.serve_snapshot_seconds,
                       background_snapshots=True, limits=time_limits(settings))
