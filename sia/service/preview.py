"""What a threshold change would do, before anyone makes it: the journal's last days
replayed twice in a sandbox, once as the thresholds are and once as proposed.

The question a preview answers is the one a manager asks: "had this change been made
`days` ago, which alerts would my team have got?". So both runs share what was learned
before the window (the journal up to its start, learned with today's thresholds, kept in
memory for the next preview over the same window); the proposed thresholds take effect
at the window's start, as they would in the live engine the moment they are applied. A
threshold that shapes what is learned across all customers cannot be applied to learned
state: the proposed run then learns the whole journal with it.

Precision is judged as `sia evaluate` judges it, by the same evaluators
(`sia.evaluation.judges`) against what the journal holds after each alert: an alert whose
outcome window (`horizon_days`) runs past the journal's newest event is counted as not yet
judgeable, never guessed. The evaluators see the whole journal once (kept for the next
preview while the journal does not grow), and each detector's figures are kept for the
alerts they judged: a change that leaves a detector's alerts as they were costs nothing
to judge again.

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
from sia.evaluation.judges import EVALUATORS, Evaluator, Judging, evaluator_for
from sia.evaluation.outcomes import Outcomes
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
    horizon_days: float = 90.0  # outcome window of the judges, as `sia evaluate --horizon`


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


@dataclass
class _Judges:
    """The evaluators of `sia evaluate`, having seen the whole journal, and what they said."""

    key: str
    outcomes: Outcomes
    seen: dict[str, Evaluator]  # detector -> evaluator that saw every event, no alert
    said: dict[tuple[str, float, tuple[str, ...]], dict[str, Any]]
    seconds: float


_JUDGES: dict[str, _Judges] = {}  # for the newest journal of this process


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
        judging_started = time.perf_counter()
        judges, judges_reused = _judges(journal, request.journal_url, newest_seq)
        precision_before = _precision(judges, before, request.current, request.horizon_days)
        precision_after = _precision(judges, after, request.proposed, request.horizon_days)
        judging_s = time.perf_counter() - judging_started
    finally:
        journal.close()
    weeks = max((newest_at - start).total_seconds() / (7 * 86_400), 1 / 7)
    ids_before = {a.alert_id for a in before}
    ids_after = {a.alert_id for a in after}
    return {
        "days": request.days,
        "window": {"from": start.isoformat(), "to": newest_at.isoformat(),
                   "events": newest_seq - split + 1, "weeks": round(weeks, 2)},
        "before": {**_summary(before, engine_before, weeks), "precision": precision_before},
        "after": {**_summary(after, engine_after, weeks), "precision": precision_after},
        "added": _changed([a for a in after if a.alert_id not in ids_before], engine_after),
        "removed": _changed([a for a in before if a.alert_id not in ids_after],
                            engine_before),
        "method": {"before_the_window": f"{prefix.events:,} events learned with the "
                   "current thresholds" + (", kept from an earlier preview" if reused
                                           else f" in {prefix.seconds:.1f} s"),
                   "proposed_run": how,
                   "precision": "the judges of `sia evaluate` over a "
                   f"{request.horizon_days:g}-day outcome window, against the journal's "
                   "events after each alert (" + (
                       "the journal as seen by an earlier preview" if judges_reused else
                       f"{judges.seconds:.1f} s to read it") + f"; {judging_s:.2f} s judging)"},
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


def _judges(journal: _Journal, url: str, newest_seq: int) -> tuple[_Judges, bool]:
    """Every evaluator, having seen every event of the journal (and whether an earlier
    preview had them see it)."""
    key = f"{url}:{newest_seq}"
    cached = _JUDGES.get(key)
    if cached is not None:
        return cached, True
    started = time.perf_counter()
    evaluator_for("")  # imports every judge module, each registering its evaluator
    evaluators = {name: judge for name in sorted(EVALUATORS)
                  if (judge := evaluator_for(name)) is not None}
    events = list(journal.events(0, newest_seq))
    for event in events:
        for judge in evaluators.values():
            judge.see_event(event)
    found_judges = _Judges(key, Outcomes.from_events(events), evaluators, {},
                           time.perf_counter() - started)
    _JUDGES.clear()
    _JUDGES[key] = found_judges
    return found_judges, False


def _precision(judges: _Judges, alerts: list[Alert], config: dict[str, Any],
               horizon: float) -> dict[str, Any]:
    """Per detector: its alerts, how many could be judged already and the share judged
    right, by the evaluator `sia evaluate` uses (its own figures: `alerts`, `unjudged`,
    `precision`)."""
    outcomes = judges.outcomes
    judging = Judging(outcomes, horizon,
                      outcomes.weeks() * max(len(outcomes.customers), 1) / 1000.0)
    by_detector: dict[str, list[Alert]] = {name: [] for name in _enabled(config)}
    for alert in alerts:
        by_detector.setdefault(alert.finding.detector, []).append(alert)
    figures: dict[str, Any] = {}
    not_evaluated = []
    judged = right = 0
    for name, mine in sorted(by_detector.items()):
        seen = judges.seen.get(name)
        if seen is None:
            not_evaluated.append(name)
            continue
        memo = (name, horizon, tuple(a.alert_id for a in mine))
        report = judges.said.get(memo)
        if report is None:
            if len(judges.said) > 256:
                judges.said.clear()
            judge = seen
            if mine and type(seen).see_alert is not Evaluator.see_alert:
                judge = _copy(seen)  # what it sees of alerts stays with this run
                for alert in mine:
                    judge.see_alert(alert)
            report = judges.said[memo] = judge.report(mine, judging)
        n, precision = int(report["alerts"]), report["precision"]
        correct = round(precision * n) if precision is not None else 0
        judged += n
        right += correct
        figures[name] = {"alerts": len(mine), "judged": n,
                         "not_yet_judgeable": int(report["unjudged"]),
                         "correct": correct, "precision": precision,
                         **({"judged_kind": report["judged_kind"]}
                            if "judged_kind" in report else {})}
    return {"horizon_days": horizon, "judged": judged, "correct": right,
            "precision": round(right / judged, 4) if judged else None,
            "by_detector": figures, "not_evaluated": not_evaluated}


def _copy(judge: Evaluator) -> Evaluator:
    """A copy of an evaluator's state (a pickle round trip is some times faster than
    copy.deepcopy here; the latter for what does not pickle)."""
    import copy
    import pickle

    try:
        copied: Evaluator = pickle.loads(pickle.dumps(judge, pickle.HIGHEST_PROTOCOL))
    except (pickle.PicklingError, TypeError, AttributeError):
        copied = copy.deepcopy(judge)
    return copied


def _enabled(config: dict[str, Any]) -> list[str]:
    """The detectors a configuration enables (each gets figures, alerts or not)."""
    detectors, _ = _pipeline(config)
    return [d.name for d in detectors]


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
