"""Prequential evaluation: replay the events once, judge every alert by what followed.

Detectors only ever see the past (the engine is online). After the replay, each alert
is judged against the same data:

- drift `overdue`: correct if the customer makes no purchase within the horizon after
  the alert; lead time is the days between the alert and the moment the customer has
  been silent for the whole horizon (when anyone would know);
- drift `erosion`: correct if the customer spends less in the horizon after the alert
  than in the horizon before it (reported under `kinds`);
- `cross_sell`: correct if the customer buys the suggested product within the horizon;
  lead time is the days from alert to that purchase.

Alerts whose horizon runs past the end of the data cannot be judged: they are left out
and counted (`unjudged`). Baselines run on the same replay at matched volume: for drift,
"no order in N days" with N chosen so that it raises as many judged alerts as the
detector; for cross-sell, "most popular product not yet bought" asked at the very moments
the detector alerted.
"""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sia.detectors.base import Detector
from sia.detectors.rhythm import DAY
from sia.engine.engine import Engine, replay
from sia.evaluation.baselines import PopularNotBought, inactivity_alerts
from sia.evaluation.outcomes import Outcomes
from sia.events.models import Event, Order
from sia.policy import Alert, Policy


@dataclass
class Judged:
    """Tally of judged alerts."""

    alerts: int = 0
    correct: int = 0
    unjudged: int = 0
    leads: list[float] = field(default_factory=list)

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


def _days(alert: Alert) -> float:
    return alert.finding.occurred_at.timestamp() / DAY


def _last_order_before(outcomes: Outcomes, customer: str, day: float) -> float | None:
    days = outcomes.order_days.get(customer, [])
    i = bisect.bisect_right(days, day)
    return days[i - 1] if i else None


def judge_overdue(outcomes: Outcomes, alerts: Sequence[tuple[str, float]],
                  horizon: float) -> tuple[Judged, set[tuple[str, float]]]:
    """Judge (customer, day) churn alerts; also the churn episodes they caught."""
    tally = Judged()
    caught: set[tuple[str, float]] = set()
    for customer, day in alerts:
        nxt = outcomes.next_order_after(customer, day)
        correct = nxt is None or nxt > day + horizon
        last = _last_order_before(outcomes, customer, day)
        lead = (last + horizon - day) if last is not None else None
        tally.add(outcomes.judgeable(day, horizon), correct, lead)
        if last is not None:
            caught.add((customer, last))
    return tally, caught


class _Replay:
    """Runs the engine once and keeps what the evaluation needs."""

    def __init__(self, events: Sequence[Event], detectors: Sequence[Detector[Any]],
                 policy: Policy) -> None:
        self.popular = PopularNotBought()
        self.alerts: list[Alert] = []
        self.baseline_cross_sell: list[tuple[str, float, str | None]] = []
        engine = Engine(detectors)
        for finding in replay(engine, self._learning_baseline(events)):
            alert = policy.admit(finding)
            if alert is None:
                continue
            self.alerts.append(alert)
            if finding.detector == "cross_sell":
                self.baseline_cross_sell.append(
                    (finding.subject_id, _days(alert), self.popular.suggest(finding.subject_id)))

    def _learning_baseline(self, events: Sequence[Event]) -> Iterator[Event]:
        for event in events:
            if isinstance(event, Order):
                self.popular.learn(event)
            yield event


def evaluate(events: Sequence[Event], detectors: Sequence[Detector[Any]], policy: Policy,
             *, horizon_days: float = 90.0) -> dict[str, Any]:
    """Precision, recall, lead time and volume of each detector against its baseline."""
    outcomes = Outcomes.from_events(events)
    run = _Replay(events, detectors, policy)
    h = horizon_days
    customers = len(outcomes.order_days)
    per_week = outcomes.weeks() * customers / 1000.0
    by_detector: dict[str, list[Alert]] = defaultdict(list)
    for alert in run.alerts:
        by_detector[alert.finding.detector].append(alert)
    report: dict[str, Any] = {}
    if "drift" in {d.name for d in detectors}:
        report["drift"] = _drift(outcomes, by_detector["drift"], h, per_week)
    if "cross_sell" in {d.name for d in detectors}:
        report["cross_sell"] = _cross_sell(outcomes, by_detector["cross_sell"],
                                           run.baseline_cross_sell, h, per_week)
    return {
        "horizon_days": h,
        "events": len(events),
        "customers": customers,
        "weeks": round(outcomes.weeks(), 1),
        "detectors": report,
    }


def _drift(outcomes: Outcomes, alerts: list[Alert], h: float,
           per_week: float) -> dict[str, Any]:
    overdue = [(a.finding.subject_id, _days(a)) for a in alerts if a.finding.kind == "overdue"]
    tally, caught = judge_overdue(outcomes, overdue, h)
    episodes = outcomes.churn_episodes(h)
    recall = _share(sum(1 for e in episodes if e in caught), len(episodes))
    days, base, base_caught = _matched_inactivity(outcomes, tally.alerts, h)
    base_recall = _share(sum(1 for e in episodes if e in base_caught), len(episodes))
    kinds: dict[str, Any] = {}
    erosion = Judged()
    for a in alerts:
        if a.finding.kind != "erosion":
            continue
        day = _days(a)
        c = a.finding.subject_id
        after = outcomes.spend_between(c, day, day + h)
        before = outcomes.spend_between(c, day - h, day)
        erosion.add(outcomes.judgeable(day, h), after < before, None)
    kinds["erosion"] = {"alerts": erosion.alerts, "unjudged": erosion.unjudged,
                        "precision": erosion.precision,
                        "correct_if": "spend in the horizon after < spend in the horizon before"}
    return {
        "judged_kind": "overdue",
        "alerts": tally.alerts,
        "unjudged": tally.unjudged,
        "precision": tally.precision,
        "recall": recall,
        "churn_episodes": len(episodes),
        "median_lead_days": tally.median_lead(),
        "alerts_per_1k_customers_per_week": round(len(overdue) / per_week, 3),
        "baseline": {"name": f"no order in {days:.0f} days", "alerts": base.alerts,
                     "unjudged": base.unjudged, "precision": base.precision,
                     "recall": base_recall, "median_lead_days": base.median_lead()},
        "kinds": kinds,
    }


def _matched_inactivity(outcomes: Outcomes, target: int,
                        h: float) -> tuple[float, Judged, set[tuple[str, float]]]:
    """The inactivity rule whose judged alert count is closest to the target."""
    best: tuple[int, float, Judged, set[tuple[str, float]]] | None = None
    for days in range(7, 366):
        alerts = inactivity_alerts(outcomes, float(days))
        tally, caught = judge_overdue(outcomes, [(c, d) for c, d, _ in alerts], h)
        gap = abs(tally.alerts - target)
        if best is None or gap < best[0]:
            best = (gap, float(days), tally, caught)
        if tally.alerts < target:
            break  # counts only fall as N grows
    assert best is not None
    return best[1], best[2], best[3]


def _cross_sell(outcomes: Outcomes, alerts: list[Alert],
                baseline: list[tuple[str, float, str | None]], h: float,
                per_week: float) -> dict[str, Any]:
    tally, base = Judged(), Judged()
    predicted: set[tuple[str, str, int]] = set()
    for a in alerts:
        c, day, product = a.finding.subject_id, _days(a), str(a.finding.facts["product_id"])
        bought = outcomes.buys_within(c, product, day, h)
        tally.add(outcomes.judgeable(day, h), bought is not None,
                  None if bought is None else bought - day)
        predicted.add((c, product, int(day)))
    base_predicted: set[tuple[str, str, int]] = set()
    for c, day, offer in baseline:
        bought = outcomes.buys_within(c, offer, day, h) if offer else None
        base.add(outcomes.judgeable(day, h), bought is not None,
                 None if bought is None else bought - day)
        if offer:
            base_predicted.add((c, offer, int(day)))
    adoptions = _adoptions(outcomes, h)
    return {
        "alerts": tally.alerts,
        "unjudged": tally.unjudged,
        "precision": tally.precision,
        "recall": _adoption_recall(adoptions, predicted, h),
        "adoptions": len(adoptions),
        "median_lead_days": tally.median_lead(),
        "alerts_per_1k_customers_per_week": round(len(alerts) / per_week, 3),
        "baseline": {"name": "most popular product not yet bought (same moments)",
                     "alerts": base.alerts, "unjudged": base.unjudged,
                     "precision": base.precision,
                     "recall": _adoption_recall(adoptions, base_predicted, h),
                     "median_lead_days": base.median_lead()},
    }


def _adoptions(outcomes: Outcomes, h: float) -> list[tuple[str, str, float]]:
    """First purchases of a product by an existing customer, late enough to be predicted."""
    out = []
    for (customer, product), days in outcomes.product_days.items():
        first = days[0]
        first_order = outcomes.order_days[customer][0]
        if first > first_order and first - h >= outcomes.first_day:
            out.append((customer, product, first))
    return out


def _adoption_recall(adoptions: list[tuple[str, str, float]],
                     predicted: set[tuple[str, str, int]], h: float) -> float | None:
    by_pair: dict[tuple[str, str], list[int]] = defaultdict(list)
    for c, p, day in predicted:
        by_pair[(c, p)].append(day)
    hits = 0
    for c, p, first in adoptions:
        if any(first - h <= day < first for day in by_pair.get((c, p), ())):
            hits += 1
    return _share(hits, len(adoptions))


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
