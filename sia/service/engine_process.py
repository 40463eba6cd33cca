"""The live engine in a process of its own, beside the HTTP server.

Why a process: in one process the front door and the engine share one interpreter lock,
so on a 2-core machine each ran at about half speed and the front door, not the engine,
set the pace (measured with `sia bench --http`). The engine process reads the journal the
server writes (SQLite allows one writer and many readers), learns, stores alerts and
delivers them; the server answers requests.

They talk through:
- a wake-up counter the server bumps after it commits events to the journal (shared
  memory, never a lock: a stuck engine must not hold up a request);
- two shared counters (the journal seq learned through, and stored through), so the
  server knows the engine's lag without asking;
- a pipe for questions that need the engine's memory (a customer's learned rhythm, the
  status, threshold changes, stop), answered by the process's main thread.

The engine process dies with the server (PR_SET_PDEATHSIG, and the pipe's end of file),
and holds the state lock while it lives: after a crash the next engine resumes from the
last snapshot plus the journal after it. The server restarts an engine process that died.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import logging.config
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sia.alerts.store import AlertRecord, AlertStore
from sia.config import ConfigError
from sia.delivery.tables import FeedbackRecord
from sia.feedback.relevance import Relevance
from sia.journal import Journal
from sia.policy import Policy
from sia.service.customers import customer_view
from sia.service.delivery import DeliveryLoop, build_delivery
from sia.service.live import LiveEngine, LiveOptions
from sia.service.logs import log_config
from sia.service.pipeline import cooldowns
from sia.service.state import Locked, state_lock
from sia.settings import Settings
from sia.thresholds.changes import Config
from sia.thresholds.versions import Versions

log = logging.getLogger("sia.engine_process")
CALL_TIMEOUT = 120.0  # seconds a question to the engine may take (a snapshot can be slow)
_PR_SET_PDEATHSIG = 1


class EngineUnavailable(RuntimeError):
    """The engine process is not running or did not answer."""


@dataclass(frozen=True)
class EngineSpec:
    """What the engine process opens: everything it needs, picklable."""

    settings: Settings
    journal_url: str
    store_url: str
    state_path: Path
    options: LiveOptions
    routes: Path | None = None
    log_level: str = "info"


# -- the engine process ---------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the server dies (even by kill -9)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _lock_state(path: Path, patience: float = 30.0) -> Any:
    """The state lock; an engine of a server that just died may still hold it a moment."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return state_lock(path).acquire()
        except Locked:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class SharedWake:
    """The engine's side of the wake-up counter, as the live engine waits on it (an
    Event's set / wait / clear / is_set): the counter changing means new events."""

    def __init__(self, counter: Any, poll: float = 0.02) -> None:
        self.counter = counter
        self.poll = poll
        self.seen = counter.value
        self.local = threading.Event()  # the engine's own threads (stop)

    def set(self) -> None:
        """Wake the engine from within its process."""
        self.local.set()

    def is_set(self) -> bool:
        """Whether there is something to wake for."""
        return self.local.is_set() or self.counter.value != self.seen

    def clear(self) -> None:
        """Nothing new since now."""
        self.seen = self.counter.value
        self.local.clear()

    def wait(self, timeout: float) -> bool:
        """Until woken or `timeout` s."""
        deadline = time.monotonic() + timeout
        while not self.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.local.wait(min(self.poll, left))
        return True


class _Relevance:
    """The relevance model, learned again when the store's verdicts change (they are
    given to the server, which records them)."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store
        self.model = Relevance.from_store(store)
        self.seen = self._fingerprint()
        self.checked = time.monotonic()
        self._lock = threading.Lock()

    def _fingerprint(self) -> tuple[Any, ...]:
        with Session(self.store.engine) as session:
            return tuple(session.execute(select(func.count(), func.max(FeedbackRecord.id),
                                                func.max(FeedbackRecord.at))).one())

    def refresh(self, *, every: float = 2.0) -> int:
        """Learn again if the verdicts changed (looked at most every `every` s); the
        number of verdicts learned."""
        with self._lock:
            if time.monotonic() - self.checked >= every:
                self.checked = time.monotonic()
                now = self._fingerprint()
                if now != self.seen:
                    self.model.relearn(self.store)
                    self.seen = now
            return self.model.labels

    def priority(self, alert: AlertRecord, rep_id: str | None) -> float:
        """The dispatcher's priority, from verdicts at most a few seconds old."""
        self.refresh()
        with self._lock:
            return self.model.priority(alert, rep_id)


class _Engine:
    """What runs in the engine process."""

    def __init__(self, spec: EngineSpec, wake: Any, learned: Any, stored: Any,
                 healthy: Any) -> None:
        from sia.service.thresholds import validate

        self.healthy = healthy
        self.spec = spec
        self.store = AlertStore(spec.store_url)
        self.journal = Journal(spec.journal_url)
        self.versions = Versions(self.store)
        self.thresholds_version = 0
        self.validate = validate

        def progress(learned_seq: int, stored_seq: int) -> None:
            learned.value, stored.value = learned_seq, stored_seq

        self.live = LiveEngine(journal=self.journal, store=self.store,
                               state_path=spec.state_path, pipeline=self.pipeline,
                               options=spec.options, wake=SharedWake(wake),
                               on_progress=progress)
        progress(self.live.cursor, self.live.stored_through)
        self.relevance = _Relevance(self.store)
        self.delivery = DeliveryLoop(
            build_delivery(self.store, self.live.engine.catalog, spec.settings,
                           routes=spec.routes, priority=self.relevance.priority),
            interval=spec.settings.serve_deliver_seconds)
        self.live.on_alerts = self.delivery.wake
        self.delivery.delivery.dispatcher.mutes = self.live.policy.config.mute

    def pipeline(self) -> tuple[list[Any], Policy]:
        """The detectors and policy of the store's newest thresholds version."""
        current = self.versions.current()
        if current is None:
            raise ConfigError("the store holds no thresholds version: the server seeds "
                              "version 1 before it starts the engine")
        built = self.validate(current.config, source=f"thresholds version {current.version}")
        self.thresholds_version = current.version
        return built.detectors, Policy(built.policy, cooldowns=cooldowns())

    def start(self) -> None:
        """Learn and deliver in background threads."""
        self.live.start()
        self.delivery.start()
        threading.Thread(target=self._report_health, name="sia-engine-health",
                         daemon=True).start()

    def _report_health(self) -> None:
        """Keep the shared health flag current: 0 while the loop's last step failed."""
        while True:
            self.healthy.value = 0 if self.live.stats.error else 1
            time.sleep(0.5)

    def stop(self) -> None:
        """Deliver no more, learn what is in hand, save the state, close."""
        self.delivery.stop()
        try:
            self.live.stop()
        except Exception:  # nothing is lost: the next start learns again from the journal
            log.exception("the state could not be saved; the next start learns the journal "
                          "again from seq %d", self.live.saved_through)
        self.journal.close()
        self.store.close()

    # questions from the server
    def status(self) -> dict[str, Any]:
        """What the engine and delivery are doing."""
        live, stats = self.live, self.live.stats
        with live.lock:
            engine = live.engine
            clock, cursor = engine.clock, live.cursor
            observed, duplicates = engine.observed, engine.duplicates
        return {
            "clock": clock.isoformat() if clock else None, "journal_seq": cursor,
            "learned": observed, "duplicates": duplicates, "events": stats.events,
            "rejected": stats.rejected, "alerts": dict(stats.alerts), "stored": stats.stored,
            "history": stats.history, "snapshots": stats.snapshots,
            "events_per_second": round(stats.events / stats.busy_seconds)
            if stats.busy_seconds else None,
            "busy_seconds": round(stats.busy_seconds, 3), "error": stats.error,
            "thresholds_version": self.thresholds_version,
            "relevance_labels": self.relevance.refresh(every=0.0), "pid": os.getpid(),
            "delivery": {**dict(self.delivery.totals.outcomes),
                         "error": self.delivery.totals.error,
                         "muted": {rep: sorted(detectors) for rep, detectors in
                                   self.delivery.delivery.dispatcher.mutes.items()}}}

    def customer(self, customer_id: str) -> dict[str, Any] | None:
        """What was learned about a customer."""
        with self.live.lock:
            return customer_view(customer_id, engine=self.live.engine, journal=self.journal,
                                 store=self.store)

    def thresholds(self, config: dict[str, Any], version: int | None) -> str:
        """Check a configuration against the running engine; with a version, apply it."""
        built = self.validate(Config(config.get("detectors", {}), config.get("policy", {})),
                              source="the proposed thresholds")
        self.live.reconfigure(built.detectors, built.policy, check_only=version is None)
        if version is None:
            return "can be applied"
        self.delivery.delivery.dispatcher.mutes = built.policy.mute
        self.thresholds_version = version
        return "applied to the live engine"


def main(spec: EngineSpec, conn: Connection, wake: Any, learned: Any, stored: Any,
         healthy: Any) -> None:
    """The engine process: open, learn and deliver until told to stop (or orphaned)."""
    _die_with_parent()
    logging.config.dictConfig(log_config(spec.log_level))
    lock = _lock_state(spec.state_path)
    try:
        engine = _Engine(spec, wake, learned, stored, healthy)
    except Exception as exc:
        log.exception("the engine could not start")
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        lock.release()
        return
    engine.start()
    conn.send(("ok", engine.status()))
    try:
        _serve(engine, conn)
    finally:
        engine.stop()
        lock.release()
        log.info("engine stopped")


def _serve(engine: _Engine, conn: Connection) -> None:
    """Answer the server's questions until it says stop or goes away."""
    handlers: dict[str, Callable[..., Any]] = {
        "status": engine.status, "customer": engine.customer,
        "thresholds": engine.thresholds}
    while True:
        try:
            op, args = conn.recv()
        except (EOFError, OSError):  # the server is gone
            return
        if op == "stop":
            conn.send(("ok", None))
            return
        try:
            conn.send(("ok", handlers[op](*args)))
        except ConfigError as exc:
            conn.send(("config", str(exc)))
        except Exception as exc:
            log.exception("the engine could not answer %s", op)
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


# -- the server's side ----------------------------------------------------------------


class EngineProcess:
    """The server's handle on its engine process: start, ask, stop, and restart it when
    it dies."""

    def __init__(self, spec: EngineSpec, journal: Journal) -> None:
        self.spec = spec
        self.journal = journal
        self._context = multiprocessing.get_context("spawn")
        self._wake = self._context.Value("q", 0, lock=False)
        self._learned = self._context.Value("q", 0, lock=False)
        self._stored = self._context.Value("q", 0, lock=False)
        self._healthy = self._context.Value("b", 0, lock=False)
        self._process: Any = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._stopping = False
        self._watchdog: threading.Thread | None = None
        self.restarts = 0
        self.last_error: str | None = None

    @property
    def pid(self) -> int | None:
        """The engine process's pid (for operators, and tests that pause it)."""
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 120.0) -> None:
        """Spawn the engine and wait until it has resumed its state."""
        with self._lock:
            self._spawn(timeout)
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name="sia-engine-watch",
                                              daemon=True)
            self._watchdog.start()

    def _spawn(self, timeout: float) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=main, name="sia-engine", daemon=True,
            args=(self.spec, child, self._wake, self._learned, self._stored,
                  self._healthy))
        process.start()
        child.close()
        if not parent.poll(timeout):
            process.kill()
            raise EngineUnavailable(f"the engine process did not start within {timeout:g} s")
        kind, value = parent.recv()
        if kind != "ok":
            process.join(10)
            raise EngineUnavailable(f"the engine process could not start: {value}")
        self._process, self._conn = process, parent
        self.last_error = None
        log.info("engine process %d running", process.pid)

    def _watch(self) -> None:
        """Restart an engine process that died (at most once every 5 s)."""
        while not self._stopping:
            time.sleep(1.0)
            process = self._process
            if self._stopping or process is None or process.is_alive():
                continue
            self.last_error = f"engine process {process.pid} died (exit {process.exitcode})"
            log.error("%s: restarting it", self.last_error)
            with self._lock:
                if self._stopping:
                    return
                try:
                    self._spawn(120.0)
                    self.restarts += 1
                except EngineUnavailable as exc:
                    self.last_error = str(exc)
                    log.error("%s", exc)
            time.sleep(5.0)

    def alive(self) -> bool:
        """Whether the engine process runs."""
        return self._process is not None and self._process.is_alive()

    def problem(self) -> str | None:
        """Why the engine is not well, without asking it (it may be busy): None when it
        runs and its last step went through."""
        if not self.alive():
            return self.last_error or "the engine process is not running"
        if not self._healthy.value:
            return "the engine's last step failed (see /v1/status and the logs)"
        return None

    def wake(self) -> None:
        """New events are in the journal (never blocks, whatever the engine is doing)."""
        self._wake.value += 1

    def lag(self) -> int:
        """Accepted events the engine has not learned yet."""
        return max(self.journal.newest_seq() - int(self._learned.value), 0)

    def learned_through(self) -> int:
        """The journal seq the engine has learned through and stored the alerts of."""
        return int(self._stored.value)

    def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait until the engine has learned through `seq` and stored its alerts."""
        deadline = time.monotonic() + timeout
        while self.learned_through() < seq:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def call(self, op: str, *args: Any, timeout: float = CALL_TIMEOUT) -> Any:
        """Ask the engine (raises EngineUnavailable, or ConfigError for thresholds it
        refuses)."""
        with self._lock:
            conn = self._conn
            if conn is None or not self.alive():
                raise EngineUnavailable(self.last_error or "the engine process is not running")
            try:
                conn.send((op, args))
                if not conn.poll(timeout):
                    raise EngineUnavailable(f"the engine did not answer {op} within "
                                            f"{timeout:g} s")
                kind, value = conn.recv()
            except (EOFError, OSError, BrokenPipeError) as exc:
                raise EngineUnavailable(f"the engine process went away ({exc})") from None
        if kind == "config":
            raise ConfigError(value)
        if kind == "error":
            raise EngineUnavailable(value)
        return value

    def status(self, timeout: float = 30.0) -> dict[str, Any]:
        """What the engine and delivery are doing."""
        found: dict[str, Any] = self.call("status", timeout=timeout)
        found["restarts"] = self.restarts
        return found

    def customer(self, customer_id: str) -> dict[str, Any] | None:
        """What was learned about a customer."""
        found: dict[str, Any] | None = self.call("customer", customer_id)
        return found

    def stop(self, timeout: float = 120.0) -> None:
        """Tell the engine to finish, save its state and exit."""
        self._stopping = True
        process = self._process
        if process is None:
            return
        with contextlib.suppress(EngineUnavailable):
            self.call("stop", timeout=timeout)
        process.join(timeout)
        if process.is_alive():
            log.error("engine process %d did not stop within %g s: killing it", process.pid,
                      timeout)
            process.kill()
            process.join(10)
        if self._conn is not None:
            self._conn.close()
