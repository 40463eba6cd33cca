"""Prequential evaluation: replay the events once, judge every alert by what followed.

Detectors only ever see the past (the engine is online). Each detector's evaluator
(`sia/evaluation/judges/`) says what a correct alert is and runs its baseline in the
same replay at matched volume. Alerts whose horizon runs past the end of the data
cannot be judged: they are left out and counted (`unjudged`).
"""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from sia.detectors.base import Detector
from sia.detectors.rhythm import DAY
from sia.engine.admission import TimeLimits
from sia.engine.embedded import alerts_of
from sia.engine.engine import Engine
from sia.engine.partitions import replay_partitioned
from sia.evaluation.judges import Evaluator, Judging, evaluator_for
from sia.evaluation.outcomes import Outcomes
from sia.events.models import Event
from sia.events.order import in_time_order
from sia.policy import Alert, Policy


@dataclass
class Judged:
    """Tally of judged alerts."""

    alerts: int = 0
    correct: int = 0
    unjudged: int = 0
    leads: list[float] = field(default_factory=list)
    stated: list[tuple[float, bool]] = field(default_factory=list)  # (probability, right)

    def add(self, judgeable: bool, correct: bool, lead: float | None) -> None:
        """Count one alert."""
        if not judgeable:
            self.unjudged += 1
            return
        self.alerts += 1
        if correct:
            self.correct += 1
            if lead is not None:
                self.leads.append(lead)

    @property
    def precision(self) -> float | None:
        """Share of judged alerts that were right."""
        return round(self.correct / self.alerts, 4) if self.alerts else None

    def median_lead(self) -> float | None:
        """Median lead days of correct alerts."""
        return round(statistics.median(self.leads), 1) if self.leads else None

    def summary(self) -> dict[str, Any]:
        """alerts, unjudged, precision, median_lead_days."""
        return {"alerts": self.alerts, "unjudged": self.unjudged,
                "precision": self.precision, "median_lead_days": self.median_lead()}


def alert_day(alert: Alert) -> float:
    """The day (since the epoch) an alert was raised."""
    return alert.finding.occurred_at.timestamp() / DAY


def last_order_before(outcomes: Outcomes, customer: str, day: float) -> float | None:
    """Day of the customer's last order at or before `day`."""
    days = outcomes.order_days.get(customer, [])
    i = bisect.bisect_right(days, day)
    return days[i - 1] if i else None


S = TypeVar("S")
R = TypeVar("R")


def closest_volume(steps: Iterable[S], run: Callable[[S], R], judged: Callable[[R], int],
                   target: int, *, counts: Literal["fall", "rise"]) -> tuple[S, R] | None:
    """The step of a baseline rule whose judged alert count comes closest to `target`.

    Baselines are compared at the detector's volume. Along the steps the rule's count
    only falls (or only rises), so the search stops once it has passed the target.
    None when there are no steps.
    """
    best: tuple[int, S, R] | None = None
    for step in steps:
        result = run(step)
        n = judged(result)
        if best is None or abs(n - target) < best[0]:
            best = (abs(n - target), step, result)
        if (n < target) if counts == "fall" else (n > target):
            break
    return (best[1], best[2]) if best is not None else None


def share(part: int, whole: int) -> float | None:
    """part / whole rounded, None when there is nothing to divide."""
    return round(part / whole, 4) if whole else None


Alerting = Callable[[Iterable[Event]], Iterable[Alert]]


@dataclass
class Refusals:
    """Events the engine refused in a replay (a time it cannot learn, a detector that
    raised), and the first reason given."""

    events: int = 0
    first: str | None = None

    def add(self, event: Event, reason: str) -> None:
        """Count one refused event."""
        self.events += 1
        if self.first is None:
            self.first = f"event {event.event_id}: {reason}"


def embedded(detectors: Sequence[Detector[Any]], policy: Policy,
             refusals: Refusals | None = None) -> Alerting:
    """Alerts of one engine and one policy: the embedded deployment; what the engine
    refuses is counted in `refusals`."""

    def alerts(events: Iterable[Event]) -> Iterator[Alert]:
        engine = Engine(detectors, on_reject=refusals.add if refusals is not None else None)
        return alerts_of(events, engine=engine, policy=policy)

    return alerts


def partitioned(make_detectors: Callable[[], list[Detector[Any]]], policy: Policy,
                partitions: int, *, share_population: bool = False) -> Alerting:
    """Alerts of a Kafka deployment with `partitions` customer partitions (and one rep
    partition): every partition learns its own population models, or with
    `share_population` all learn them from every partition, a day late."""

    def alerts(events: Iterable[Event]) -> Iterator[Alert]:
        return replay_partitioned(events, partitions=partitions, rep_partitions=1,
                                  make_detectors=make_detectors,
                                  policy_config=policy.config,
                                  share_population=share_population)

    return alerts


class _Replay:
    """Runs the deployment once, feeding every evaluator what it needs as it happens."""

    def __init__(self, events: Sequence[Event], alerting: Alerting,
                 evaluators: dict[str, Evaluator]) -> None:
        self.evaluators = evaluators
        self.alerts: list[Alert] = []
        for alert in alerting(self._seen(events)):
            self.alerts.append(alert)
            judge = evaluators.get(alert.finding.detector)
            if judge is not None:
                judge.see_alert(alert)

    def _seen(self, events: Sequence[Event]) -> Iterator[Event]:
        judges = list(self.evaluators.values())
        for event in events:
            for judge in judges:
                judge.see_event(event)
            yield event


def evaluate(events: Sequence[Event], detectors: Sequence[Detector[Any]], policy: Policy,
             *, horizon_days: float = 90.0, alerting: Alerting | None = None,
             ) -> dict[str, Any]:
    """Precision, recall, lead time and volume of each detector against its baseline.

    `alerting` is the deployment judged (default: one embedded engine running
    `detectors` under `policy`; see `partitioned` for a Kafka deployment).

    The events are learned and judged in time order, whatever the order they come in
    (a file of history sorted by customer would otherwise be refused as late nearly
    whole, while the baselines judged it all): `out_of_order` counts the events the
    given order would have had refused, `refused` what the engine refused all the same
    (embedded engine only).
    """
    events, out_of_order = in_time_order(events, TimeLimits().max_late)
    outcomes = Outcomes.from_events(events)
    evaluators = {d.name: e for d in detectors if (e := evaluator_for(d.name)) is not None}
    refusals = Refusals() if alerting is None else None
    run = _Replay(events, alerting or embedded(detectors, policy, refusals), evaluators)
    customers = max(len(outcomes.customers), 1)
    judging = Judging(outcomes, horizon_days, outcomes.weeks() * customers / 1000.0)
    by_detector: dict[str, list[Alert]] = defaultdict(list)
    for alert in run.alerts:
        by_detector[alert.finding.detector].append(alert)
    report: dict[str, Any] = {}
    for name, judge in evaluators.items():
        report[name] = judge.report(by_detector[name], judging)
    unjudgeable = sorted(d.name for d in detectors if d.name not in evaluators)
    return {
        "horizon_days": horizon_days,
        "events": len(events),
        "customers": len(outcomes.customers),
        "weeks": round(outcomes.weeks(), 1),
        "out_of_order": out_of_order,
        "refused": None if refusals is None else {"events": refusals.events,
                                                  "first": refusals.first},
        "detectors": report,
        "not_evaluated": unjudgeable,
    }
