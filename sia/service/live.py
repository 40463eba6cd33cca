"""The live engine: a thread that learns from the journal in order, as events arrive.

events (journal, in seq order) -> engine (event-time ticks at each day boundary) ->
findings -> policy -> alerts, stored at once (within a second of their event).

- Wall clock: when the journal is caught up, the clock is moved to now every
  `tick_seconds`, so drift and the other absence-based detectors fire when no event
  arrives. It runs at most `clock_lead` ahead of the newest event: a feed that has gone
  silent for longer is a broken feed, not every customer lost (and a backfill of last
  year's events is not followed by a year of ticks).
- History: alerts about a time more than `history_after` before now (a backfill) are
  stored as history, never sent to people.
- Once: the snapshot records the journal seq it has learned through; on start the
  engine resumes from it and reads the journal after it, so every accepted event is
  learned exactly once across restarts and crashes. Alerts have deterministic ids, so
  re-learning events after a crash (those after the last snapshot) stores nothing twice.
- State is snapshotted every `snapshot_seconds` when it changed, and on stop. With
  `background_snapshots` (the engine process), a periodic snapshot is encoded and
  written by a forked copy of the process, as Redis's BGSAVE does: encoding the state
  takes about a second on the online-retail sample, and learning (so every alert) would
  wait for it. The fork happens under the engine's lock, so the copy is consistent; the
  copy only encodes, writes the file atomically and exits, touching no lock, log or
  connection of the parent; the save counts once it exited 0.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sia.alerts.store import AlertStore
from sia.config import ConfigError
from sia.detectors.base import Detector
from sia.engine.admission import TimeLimits
from sia.engine.driver import Driver
from sia.engine.engine import Engine
from sia.engine.snapshot import SnapshotError
from sia.events.models import Event, parse_event
from sia.journal import Journal, RejectEntry
from sia.policy import Alert, Policy, PolicyConfig
from sia.service.state import write_atomically

log = logging.getLogger("sia.live")
Pipeline = Callable[[], tuple[list[Detector[Any]], Policy]]
MAGIC = b"SIA-LIVE 1\n"


@dataclass(frozen=True)
class LiveOptions:
    """How the live engine keeps time, stores and snapshots."""

    clock: str = "wall"  # "wall": ticks by the wall clock too; "event": event time only
    tick_seconds: float = 30.0
    clock_lead: timedelta = timedelta(days=3)
    history_after: timedelta = timedelta(hours=48)
    snapshot_seconds: float = 60.0
    batch: int = 2048
    background_snapshots: bool = False  # periodic snapshots from a forked copy (POSIX)
    # what the engine refuses itself: the front door refuses events more than
    # `max_late` behind the newest one; the engine's clock may be up to `clock_lead`
    # further on (ticks), so it allows both, and refuses only what slipped past
    limits: TimeLimits = field(default_factory=TimeLimits)


@dataclass
class LiveStats:
    """What the live engine has done since it started (read by /metrics and /readyz)."""

    events: int = 0
    rejected: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    stored: int = 0
    history: int = 0
    snapshots: int = 0
    last_snapshot_at: float | None = None
    busy_seconds: float = 0.0  # time spent learning, for events per second
    started_at: float = field(default_factory=time.monotonic)
    error: str | None = None  # the last failure of the loop, until it recovers


class LiveEngine:
    """Owns one engine; other threads read it only under `lock`."""

    def __init__(self, *, journal: Journal, store: AlertStore, state_path: Path,
                 pipeline: Pipeline, options: LiveOptions | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 on_alerts: Callable[[int], None] | None = None,
                 wake: Any = None,
                 on_progress: Callable[[int, int], None] | None = None) -> None:
        self.journal = journal
        self.store = store
        self.state_path = state_path
        self.pipeline = pipeline
        self.options = options or LiveOptions()
        self.now = now
        self.on_alerts = on_alerts
        self.lock = threading.RLock()
        self.stats = LiveStats()
        self.cursor = 0  # journal seq learned through
        self.stored_through = 0  # ... and whose alerts are stored
        self._saved_cursor = -1
        self._saved_clock: datetime | None = None
        # a background save under way: (pid, cursor, clock, started)
        self._saving: tuple[int, int, datetime | None, float] | None = None
        # set when new events are in the journal: a threading.Event, or one shared with
        # the process that writes the journal (multiprocessing.Event)
        self._wake = wake if wake is not None else threading.Event()
        self.on_progress = on_progress  # (learned through seq, stored through seq)
        self._stop = threading.Event()
        self._learned = threading.Condition()
        self._refusals: list[RejectEntry] = []  # what the engine refused in this batch
        self._thread: threading.Thread | None = None
        detectors, self.policy = pipeline()
        self.driver = self._restore(detectors)
        self.policy.remember(store.recent_alerts())

    @property
    def engine(self) -> Engine:
        """The engine (read it under `lock`)."""
        return self.driver.engine

    # state
    def _engine_options(self) -> dict[str, Any]:
        limits = self.options.limits
        return {"time_limits": TimeLimits(max_ahead=limits.max_ahead,
                                          max_late=limits.max_late + self.options.clock_lead,
                                          max_gap=limits.max_gap),
                "wall_clock": self.now, "on_reject": self._refused,
                "conflicts": False}  # the journal refused them before they came here

    def _refused(self, event: Event, reason: str) -> None:
        """An event the engine would not learn: kept with the journal's rejects."""
        self._refusals.append(RejectEntry(0, event.event_id, reason, event.model_dump_json()))

    def _restore(self, detectors: list[Detector[Any]]) -> Driver:
        if not self.state_path.exists():
            return Driver(Engine(detectors, **self._engine_options()))
        blob = self.state_path.read_bytes()
        if not blob.startswith(MAGIC):
            raise SnapshotError(f"{self.state_path}: not a live-engine snapshot")
        end = blob.index(b"\n", len(MAGIC))
        header = json.loads(blob[len(MAGIC):end])
        engine = Engine.restore(blob[end + 1:], detectors=detectors, **self._engine_options())
        self.cursor = self._saved_cursor = self.stored_through = int(header["journal_seq"])
        next_tick = header.get("next_tick")
        log.info("resumed from %s: journal seq %d, clock %s", self.state_path, self.cursor,
                 engine.clock)
        return Driver(engine, next_tick=datetime.fromisoformat(next_tick) if next_tick else None)

    @property
    def saved_through(self) -> int:
        """The journal seq the saved state has learned through (-1: nothing saved)."""
        return self._saved_cursor

    def snapshot(self) -> bool:
        """Save what was learned (if anything changed since the last save), in this
        process, after a background save under way has ended."""
        self._reap(wait=True)
        with self.lock:
            if self.cursor == self._saved_cursor and self.engine.clock == self._saved_clock:
                return False
            header = {"journal_seq": self.cursor,
                      "next_tick": self.driver.next_tick.isoformat()
                      if self.driver.next_tick else None}
            blob = self.engine.snapshot()
            cursor, clock = self.cursor, self.engine.clock
        write_atomically(self.state_path, MAGIC + json.dumps(header).encode() + b"\n" + blob)
        self._saved_cursor, self._saved_clock = cursor, clock
        self.stats.snapshots += 1
        self.stats.last_snapshot_at = time.monotonic()
        return True

    def snapshot_in_background(self) -> bool:
        """Start saving what was learned from a forked copy of this process (see the
        module): learning goes on meanwhile. False when nothing changed or a save is
        still under way."""
        self._reap(wait=False)
        if self._saving is not None:
            return False
        with self.lock:
            if self.cursor == self._saved_cursor and self.engine.clock == self._saved_clock:
                return False
            header = {"journal_seq": self.cursor,
                      "next_tick": self.driver.next_tick.isoformat()
                      if self.driver.next_tick else None}
            cursor, clock = self.cursor, self.engine.clock
            pid = os.fork()
            if pid == 0:  # the copy: encode, write, exit; nothing else
                code = 1
                try:
                    blob = self.engine.snapshot()
                    write_atomically(self.state_path,
                                     MAGIC + json.dumps(header).encode() + b"\n" + blob)
                    code = 0
                except BaseException as exc:
                    os.write(2, f"background snapshot failed: {type(exc).__name__}: "
                                f"{exc}\n".encode(errors="replace"))
                finally:
                    os._exit(code)
        self._saving = (pid, cursor, clock, time.monotonic())
        return True

    def _reap(self, *, wait: bool, patience: float = 600.0) -> None:
        """Collect a background save that ended (or, `wait`, wait for it); one running
        longer than `patience` seconds is killed and counted as failed."""
        if self._saving is None:
            return
        pid, cursor, clock, started = self._saving
        if not wait and time.monotonic() - started > patience:
            os.kill(pid, signal.SIGKILL)
            wait = True
        done, status = os.waitpid(pid, 0 if wait else os.WNOHANG)
        if done == 0:
            return
        self._saving = None
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            log.error("background snapshot (pid %d) failed with exit code %d; the next one "
                      "tries again", pid, code)
            return
        self._saved_cursor, self._saved_clock = cursor, clock
        self.stats.snapshots += 1
        self.stats.last_snapshot_at = time.monotonic()

    # the loop
    def start(self) -> None:
        """Run in a background thread."""
        self._thread = threading.Thread(target=self._run, name="sia-live-engine", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """New events are in the journal."""
        self._wake.set()

    def stop(self, *, timeout: float = 60.0) -> None:
        """Finish the batch in hand, then save the state."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.snapshot()

    def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait until every journal event through `seq` is learned and its alerts stored;
        False on timeout."""
        with self._learned:
            return self._learned.wait_for(lambda: self.stored_through >= seq, timeout)

    def lag(self) -> int:
        """Events accepted but not yet learned."""
        return max(self.journal.newest_seq() - self.cursor, 0)

    def _run(self) -> None:
        last_tick = 0.0
        last_save = time.monotonic()
        while not self._stop.is_set():
            try:
                learned = self.step()
                if self.options.clock == "wall" and not learned \
                        and time.monotonic() - last_tick >= self.options.tick_seconds:
                    self.tick()
                    last_tick = time.monotonic()
                self._reap(wait=False)
                if time.monotonic() - last_save >= self.options.snapshot_seconds:
                    if self.options.background_snapshots and sys.platform != "win32":
                        self.snapshot_in_background()
                    else:
                        self.snapshot()
                    last_save = time.monotonic()
                self.stats.error = None
            except Exception as exc:  # keep serving; /readyz reports it
                log.exception("live engine step failed")
                self.stats.error = f"{type(exc).__name__}: {exc}"
                self._stop.wait(1.0)
                continue
            if not learned:
                self._wake.wait(max(min(self.options.tick_seconds, 1.0), 0.05))
                self._wake.clear()

    def step(self) -> int:
        """Learn the next batch of the journal; returns how many events it held."""
        rows = self.journal.read_after(self.cursor, self.options.batch)
        if not rows:
            return 0
        events, rejects = _decode(rows)
        started = time.perf_counter()
        with self.lock:
            found = self.driver.feed(events)
            alerts = self._admit(found)
            self.cursor = rows[-1][0]
        self.stats.busy_seconds += time.perf_counter() - started
        self.stats.events += len(events)
        rejects += self._refusals
        self._refusals = []
        if rejects:
            self.stats.rejected += len(rejects)
            self.journal.keep_rejects(rejects, source="engine")
        self._store(alerts)
        with self._learned:
            self.stored_through = rows[-1][0]
            self._learned.notify_all()
        if self.on_progress is not None:
            self.on_progress(self.cursor, self.stored_through)
        return len(rows)

    def tick(self) -> int:
        """Move the clock to now (at most `clock_lead` past the newest event); returns
        how many alerts that raised."""
        newest = self.journal.newest_time()  # the server writes the journal, not this process
        if newest is None:
            return 0
        target = min(self.now(), newest + self.options.clock_lead)
        with self.lock:
            alerts = self._admit(self.driver.tick_until(target))
        self._store(alerts)
        return len(alerts)

    def reconfigure(self, detectors: list[Detector[Any]], policy: PolicyConfig, *,
                    check_only: bool = False) -> None:
        """New thresholds for the running engine, keeping everything it learned (raises
        ConfigError for a change it cannot take without relearning: a threshold that
        shapes what was learned across customers, or another set of detectors).
        `check_only`: raise or return, changing nothing."""
        with self.lock:
            learned = {d.name: d for d in self.engine.detectors}
            if sorted(learned) != sorted(d.name for d in detectors):
                raise ConfigError(
                    f"the engine runs {', '.join(sorted(learned))}; enabling or disabling a "
                    "detector needs a restart (and a replay to teach it the history)")
            for configured in detectors:
                current = learned[configured.name]
                for key in sorted(configured.global_params):
                    was, now = getattr(current.params, key), getattr(configured.params, key)
                    if was != now:
                        raise ConfigError(
                            f"{configured.name}.{key}: {was} -> {now} shapes what was learned "
                            "across all customers, so it cannot change while the engine "
                            "runs: replay the events with the new value to rebuild")
            if check_only:
                return
            for configured in detectors:
                current = learned[configured.name]
                current.params = configured.params
                current.set_overrides(configured.overrides)
            self.policy.reconfigure(policy, self.store.recent_alerts())
            changed = getattr(self.engine, "mark_changed", None)
            if changed is not None:  # the engine keeps a rollback checkpoint: renew it
                changed()

    def _admit(self, findings: Sequence[Any]) -> list[Alert]:
        admitted = (self.policy.admit(f) for f in findings)
        return [a for a in admitted if a is not None]

    def _store(self, alerts: list[Alert]) -> None:
        if not alerts:
            return
        cutoff = self.now() - self.options.history_after
        catalog = self.engine.catalog
        stored = self.store.add(alerts, owner=lambda a: catalog.owner_of(a.finding),
                                history_before=cutoff)
        for alert in alerts:
            self.stats.alerts[alert.finding.detector] += 1
        old = sum(1 for a in alerts if a.finding.occurred_at < cutoff)
        self.stats.stored += stored
        self.stats.history += old
        if self.on_alerts is not None and stored > old:
            self.on_alerts(stored)


def _decode(rows: Sequence[tuple[int, str]]) -> tuple[list[Event], list[RejectEntry]]:
    """Events of journal rows; a row the contract no longer reads (an upgrade that
    narrowed it) is kept as a reject rather than stopping the engine."""
    events: list[Event] = []
    rejects: list[RejectEntry] = []
    for seq, body in rows:
        try:
            events.append(parse_event(body))
        except ValidationError as exc:
            rejects.append(RejectEntry(seq, None, f"journal seq {seq} no longer valid: {exc}",
                                       body))
    return events, rejects
