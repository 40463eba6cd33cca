"""Cross-sell: an alert is right when the customer buys the suggested product in time.

Baseline: "most popular product not yet bought" (popularity = distinct customers so
far, prequential), asked at exactly the moments the detector alerted, for the same
customers: same volume, same timing, only the suggestion differs. Recall: the share of
adoptions (an existing customer's first purchase of a product) preceded within the
horizon by an alert naming that product.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sia.evaluation.baselines import PopularNotBought
from sia.evaluation.evaluate import Judged, alert_day, share
from sia.evaluation.judges import Evaluator, Judging, evaluator
from sia.evaluation.outcomes import Outcomes
from sia.events.models import Event, Order
from sia.policy import Alert


@evaluator
class CrossSellEvaluator(Evaluator):
    """Judges cross-sell alerts against the popularity rule at the same moments."""

    detector = "cross_sell"

    def __init__(self) -> None:
        self.popular = PopularNotBought()
        self.baseline: list[tuple[str, float, str | None]] = []

    def see_event(self, event: Event) -> None:
        """Popularity so far."""
        if isinstance(event, Order):
            self.popular.learn(event)

    def see_alert(self, alert: Alert) -> None:
        """Ask the baseline for its suggestion at the same moment."""
        customer = alert.finding.subject_id
        self.baseline.append((customer, alert_day(alert), self.popular.suggest(customer)))

    def report(self, alerts: list[Alert], judging: Judging) -> dict[str, Any]:
        """Figures for the detector and the baseline."""
        return _cross_sell(judging.outcomes, alerts, self.baseline, judging.horizon,
                           judging.customer_weeks_per_1k)


def _cross_sell(outcomes: Outcomes, alerts: list[Alert],
                baseline: list[tuple[str, float, str | None]], h: float,
                per_week: float) -> dict[str, Any]:
    tally, base = Judged(), Judged()
    predicted: set[tuple[str, str, int]] = set()
    for a in alerts:
        c, day, product = a.finding.subject_id, alert_day(a), str(a.finding.facts["product_id"])
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
    return share(hits, len(adoptions))


