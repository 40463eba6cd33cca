"""What a threshold change would do, before anyone makes it: the journal's last days
replayed twice in a sandbox, once as the thresholds are and once as proposed.

The question a preview answers is the one a manager asks: "had this change been made
`days` ago, which alerts would my team have got?". So both runs share what was learned
before the window (the journal up to its start, learned with today's thresholds, kept in
memory for the next preview over the same window); the proposed thresholds take effect
at the window's start, as they would in the live engine the moment they are applied. A
threshold that shapes what is learned across all customers cannot be applied to learned
state: the proposed run then learns the whole journal with it.

A preview is a sandbox (as Grafana's backtest is): it opens the journal read-only, and
neither stores an alert nor sends anything.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from sia.engine.driver import Driver
from sia.engine.engine import FILE_CHUNK, Engine
from sia.engine.snapshot import SnapshotError
from sia.events.models import Event, parse_event
from sia.journal.store import JournalEntry
from sia.policy import Alert, Policy
from sia.thresholds.changes import Config

SAMPLE = 20  # alerts shown of those a change adds or removes


@dataclass(frozen=True)
class PreviewRequest:
    """A preview to compute (picklable: it runs in a process of its own)."""

    journal_url: str
    current: dict[str, Any]  # the thresholds as they are (Config.as_dict)
    proposed: dict[str, Any]
    days: float


@dataclass
class _Prefix:
    """What the engine and the policy learned before the window, and where it ends."""

    key: str
    split: int  # the first journal seq of the window
    engine: bytes
    next_tick: datetime | None
    policy: Policy
    events: int
    seconds: float


_CACHE: dict[str, _Prefix] = {}  # the newest prefix of this process (one is enough)


class PreviewPool:
    """One warm worker process for previews (the server stays responsive while one
    runs, and what a preview learned before its window is kept there for the next)."""

    def __init__(self) -> None:
        self._pool: Any = None

    def submit(self, request: PreviewRequest) -> Any:
        """A concurrent.futures Future of `run_preview(request)`."""
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return self._pool.submit(run_preview, request)

    def close(self) -> None:
        """Stop the worker."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _config(data: dict[str, Any]) -> Config:
    return Config(data.get("detectors", {}), data.get("policy", {}))


def _digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class _Journal:
    """The journal, read-only."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):  # open it so that nothing can be written
            url = f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&uri=true"
        self.engine = create_engine(url)

    def newest(self) -> tuple[int, datetime | None]:
        with Session(self.engine) as session:
            seq, at = session.execute(select(func.max(JournalEntry.seq),
                                             func.max(JournalEntry.occurred_at))).one()
        return int(seq or 0), at

    def first_at_or_after(self, at: datetime) -> int:
        with Session(self.engine) as session:
            seq = session.scalar(select(func.min(JournalEntry.seq)).where(
                JournalEntry.occurred_at >= at))
        return int(seq) if seq is not None else 1 << 62

    def events(self, after: int, through: int) -> Iterator[Event]:
        """Events after seq `after` through `through`, in order."""
        while after < through:
            with Session(self.engine) as session:
                rows = session.execute(
                    select(JournalEntry.seq, JournalEntry.body)
                    .where(JournalEntry.seq > after, JournalEntry.seq <= through)
                    .order_by(JournalEntry.seq).limit(5000)).all()
            if not rows:
                return
            for _, body in rows:
                yield parse_event(body)
            after = rows[-1][0]

    def close(self) -> None:
        self.engine.dispose()


def _pipeline(config: dict[str, Any]) -> tuple[list[Any], Policy]:
    from sia.service.thresholds import validate

    built = validate(_config(config), source="thresholds")
    return built.detectors, Policy(built.policy)


def _learn(driver: Driver, policy: Policy, events: Iterator[Event]) -> list[Alert]:
    alerts: list[Alert] = []
    chunk: list[Event] = []
    for event in events:
        chunk.append(event)
        if len(chunk) >= FILE_CHUNK:
            alerts += [a for f in driver.feed(chunk) if (a := policy.admit(f))]
            chunk = []
    alerts += [a for f in driver.feed(chunk) if (a := policy.admit(f))]
    return alerts


def _prefix(journal: _Journal, current: dict[str, Any], split: int) -> tuple[_Prefix, bool]:
    """The state before the window (and whether an earlier preview had learned it)."""
    key = f"{_digest(current)}:{split}"
    cached = _CACHE.get(key)
    if cached is not None:
        return cached, True
    started = time.perf_counter()
    detectors, policy = _pipeline(current)
    driver = Driver(Engine(detectors))
    _learn(driver, policy, journal.events(0, split - 1))
    found = _Prefix(key, split, driver.engine.snapshot(), driver.next_tick, policy,
                    driver.engine.observed, time.perf_counter() - started)
    _CACHE.clear()
    _CACHE[key] = found
    return found, False


def _window_run(prefix: _Prefix, journal: _Journal, config: dict[str, Any],
                through: int, start: datetime) -> tuple[list[Alert], Engine, str]:
    """The window learned with `config` from the prefix's state (or, for a threshold
    that shapes what is learned across customers, from the journal's start)."""
    import copy

    detectors, policy = _pipeline(config)
    try:
        engine = Engine.restore(prefix.engine, detectors=detectors)
    except SnapshotError:
        driver = Driver(Engine(detectors))
        alerts = _learn(driver, policy, journal.events(0, through))
        return ([a for a in alerts if a.finding.occurred_at >= start], driver.engine,
                "the whole journal learned with the proposed thresholds (a threshold that "
                "shapes what is learned across customers changed)")
    carried = copy.deepcopy(prefix.policy)  # the cooldowns and inhibitions running
    carried.reconfigure(policy.config, ())
    driver = Driver(engine, next_tick=prefix.next_tick)
    return _learn(driver, carried, journal.events(prefix.split - 1, through)), engine, \
        "the proposed thresholds applied to what was learned, from the window's start"


def run_preview(request: PreviewRequest) -> dict[str, Any]:
    """Both runs and what differs (runs in a preview worker process)."""
    started = time.perf_counter()
    journal = _Journal(request.journal_url)
    try:
        newest_seq, newest_at = journal.newest()
        if newest_at is None:
            return {"error": "the journal is empty: there is nothing to preview on"}
        start = (newest_at - timedelta(days=request.days)).replace(
            hour=0, minute=0, second=0, microsecond=0)
        split = min(journal.first_at_or_after(start), newest_seq + 1)
        prefix, reused = _prefix(journal, request.current, split)
        before, engine_before, _ = _window_run(prefix, journal, request.current, newest_seq,
                                               start)
        after, engine_after, how = _window_run(prefix, journal, request.proposed, newest_seq,
                                               start)
    finally:
        journal.close()
    weeks = max((newest_at - start).total_seconds() / (7 * 86_400), 1 / 7)
    ids_before = {a.alert_id for a in before}
    ids_after = {a.alert_id for a in after}
    return {
        "days": request.days,
        "window": {"from": start.isoformat(), "to": newest_at.isoformat(),
                   "events": newest_seq - split + 1, "weeks": round(weeks, 2)},
        "before": _summary(before, engine_before, weeks),
        "after": _summary(after, engine_after, weeks),
        "added": _changed([a for a in after if a.alert_id not in ids_before], engine_after),
        "removed": _changed([a for a in before if a.alert_id not in ids_after],
                            engine_before),
        "method": {"before_the_window": f"{prefix.events:,} events learned with the "
                   "current thresholds" + (", kept from an earlier preview" if reused
                                           else f" in {prefix.seconds:.1f} s"),
                   "proposed_run": how},
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


def _owners(alerts: list[Alert], engine: Engine) -> list[tuple[Alert, str | None, str | None]]:
    return [(a, *engine.catalog.owner_of(a.finding)) for a in alerts]


def _summary(alerts: list[Alert], engine: Engine, weeks: float) -> dict[str, Any]:
    owned = _owners(alerts, engine)
    by_detector = Counter(a.finding.detector for a in alerts)
    by_team = Counter(team or "(no team)" for _, _, team in owned)
    by_rep = Counter(rep for _, rep, _ in owned if rep)
    busiest = by_rep.most_common(1)
    return {
        "alerts": len(alerts), "alerts_per_week": round(len(alerts) / weeks, 2),
        "by_detector": {k: {"alerts": v, "alerts_per_week": round(v / weeks, 2)}
                        for k, v in sorted(by_detector.items())},
        "by_team": {k: {"alerts": v, "alerts_per_week": round(v / weeks, 2)}
                    for k, v in sorted(by_team.items())},
        "busiest_rep": {"rep_id": busiest[0][0],
                        "alerts_per_week": round(busiest[0][1] / weeks, 2)}
        if busiest else None,
    }


def _changed(alerts: list[Alert], engine: Engine) -> dict[str, Any]:
    owned = _owners(sorted(alerts, key=lambda a: (-a.finding.value, a.alert_id)), engine)
    by_detector = Counter(a.finding.detector for a in alerts)
    return {"count": len(alerts), "by_detector": dict(sorted(by_detector.items())),
            "sample": [{"alert_id": a.alert_id, "detector": a.finding.detector,
                        "kind": a.finding.kind, "subject_id": a.finding.subject_id,
                        "occurred_at": a.finding.occurred_at.isoformat(),
                        "severity": a.finding.severity.value, "title": a.finding.title,
                        "explanation": a.finding.explanation, "action": a.finding.action,
                        "value": a.finding.value, "rep_id": rep, "team": team}
                       for a, rep, team in owned[:SAMPLE]]}
