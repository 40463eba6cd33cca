"""Switch-sell: an alert "move the customer from A to B" is right when, within the horizon
after it, the customer does not buy A again, or buys B.

Lead time: days from the alert to the first sign of the switch, the customer's first
order without A or their first purchase of B, whichever comes first (none when the
alert was right only because the customer ordered nothing at all in the horizon).

Recall: the share of drop episodes the detector saw coming. A drop episode is a
purchase of A by a customer who had bought A in at least `MIN_ORDERS` orders, followed
by no A for the whole horizon while the customer kept ordering (and inside the data);
it is caught when an alert naming that customer and A fell in the horizon before or on
the day of that last purchase.

Baseline: the CRM rule "product sales down X% quarter on quarter -> alert its buyers":
at every order in which a customer buys a product they have bought in `MIN_ORDERS`
orders or more, alert when that product's revenue in the last 13 weeks is down at least
X% on the 13 weeks before (prequential; 90-day cooldown per customer and product, as
the policy gives the detector), with X chosen so the rule raises as many judged alerts
as the detector. The rule names no substitute, so it can only be right by the drop.
Reported beside it: "customer returned this product twice" (alert at the second return,
at its own volume), and `base_rate`, the share of all such regular-product orders after
which the product is not bought again within the horizon: what alerting at random
would score.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Any

from sia.detectors.rhythm import DAY
from sia.evaluation.evaluate import Judged, alert_day, closest_volume, share
from sia.evaluation.judges import Evaluator, Judging, evaluator
from sia.evaluation.outcomes import Outcomes
from sia.events.models import Event, Order, Return
from sia.policy import Alert

MIN_ORDERS = 3  # the detector's default min_orders
COOLDOWN_DAYS = 90.0
QUARTER_WEEKS = 13


@evaluator
class SwitchSellEvaluator(Evaluator):
    """Judges switch-sell alerts against the quarter-on-quarter decline rule."""

    detector = "switch_sell"

    def __init__(self) -> None:
        self.start: float | None = None
        self.weekly: dict[str, dict[int, float]] = defaultdict(dict)  # product -> week -> £
        self.orders_of: dict[tuple[str, str], int] = defaultdict(int)
        self.returns_of: dict[tuple[str, str], int] = defaultdict(int)
        # (customer, product, day, quarter-on-quarter decline or None)
        self.candidates: list[tuple[str, str, float, float | None]] = []
        self.returned_twice: list[tuple[str, str, float]] = []

    def see_event(self, event: Event) -> None:
        """Feed the baseline rules (they only ever see the past)."""
        if not isinstance(event, Order | Return):
            return
        day = event.occurred_at.timestamp() / DAY
        if self.start is None:
            self.start = day
        if isinstance(event, Return):
            for product in dict.fromkeys(line.product_id for line in event.lines):
                key = (event.customer_id, product)
                self.returns_of[key] += 1
                if self.returns_of[key] == 2:
                    self.returned_twice.append((event.customer_id, product, day))
            return
        week = int((day - self.start) // 7)
        revenue: dict[str, float] = {}
        for line in event.lines:
            revenue[line.product_id] = revenue.get(line.product_id, 0.0) + line.amount
        for product, amount in revenue.items():
            weeks = self.weekly[product]
            weeks[week] = weeks.get(week, 0.0) + amount
            key = (event.customer_id, product)
            self.orders_of[key] += 1
            if self.orders_of[key] >= MIN_ORDERS:
                self.candidates.append((event.customer_id, product, day,
                                        self._qoq(weeks, week)))

    @staticmethod
    def _qoq(weeks: dict[int, float], week: int) -> float | None:
        """Decline of the last 13 weeks' revenue against the 13 before (None: too early)."""
        if week < 2 * QUARTER_WEEKS - 1:
            return None
        now = sum(weeks.get(w, 0.0) for w in range(week - QUARTER_WEEKS + 1, week + 1))
        before = sum(weeks.get(w, 0.0)
                     for w in range(week - 2 * QUARTER_WEEKS + 1, week - QUARTER_WEEKS + 1))
        if before <= 0:
            return None
        return 1.0 - now / before

    def report(self, alerts: list[Alert], judging: Judging) -> dict[str, Any]:
        """Figures for the detector, the matched rule, the returns rule and the base rate."""
        outcomes, h = judging.outcomes, judging.horizon
        tally, drop_only, active = Judged(), Judged(), Judged()
        took_b = 0
        kinds: dict[str, Judged] = defaultdict(Judged)
        sources: dict[str, Judged] = defaultdict(Judged)
        predicted: dict[tuple[str, str], list[float]] = defaultdict(list)
        for a in alerts:
            f = a.finding
            c, day = f.subject_id, alert_day(a)
            product, offer = str(f.facts["product_id"]), str(f.facts["to_product_id"])
            judgeable = outcomes.judgeable(day, h)
            dropped, took, lead, ordered = judge(outcomes, c, product, offer, day, h)
            tally.add(judgeable, dropped or took, lead)
            drop_only.add(judgeable, dropped, lead)
            if ordered:
                active.add(judgeable, dropped or took, lead)
            kinds[f.kind].add(judgeable, dropped or took, lead)
            sources[str(f.facts.get("target_source", ""))].add(judgeable, dropped or took, lead)
            if judgeable and took:
                took_b += 1
            predicted[(c, product)].append(day)
        episodes = drop_episodes(outcomes, h)
        threshold, base, base_predicted = self._matched_decline_rule(outcomes, tally.alerts, h)
        returns = Judged()
        for c, product, day in self.returned_twice:
            dropped, _, lead, _ = judge(outcomes, c, product, None, day, h)
            returns.add(outcomes.judgeable(day, h), dropped, lead)
        base_rate = Judged()
        for c, product, day in _cooled((c, p, d) for c, p, d, _ in self.candidates):
            dropped, _, lead, _ = judge(outcomes, c, product, None, day, h)
            base_rate.add(outcomes.judgeable(day, h), dropped, lead)
        return {
            "alerts": tally.alerts,
            "unjudged": tally.unjudged,
            "precision": tally.precision,
            "precision_drop_only": drop_only.precision,
            "precision_when_customer_ordered": active.precision,
            "took_suggested_product": share(took_b, tally.alerts),
            "recall": _recall(episodes, predicted, h),
            "drop_episodes": len(episodes),
            "median_lead_days": tally.median_lead(),
            "alerts_per_1k_customers_per_week": round(len(alerts) / judging.customer_weeks_per_1k,
                                                      3),
            "base_rate": base_rate.precision,
            "baseline": {
                "name": (f"product revenue down {threshold:.0%} quarter on quarter -> alert "
                         f"its buyers of {MIN_ORDERS}+ orders at their next order of it"
                         if threshold is not None else "product revenue down quarter on "
                         "quarter (no threshold reaches the volume)"),
                "alerts": base.alerts, "unjudged": base.unjudged, "precision": base.precision,
                "recall": _recall(episodes, base_predicted, h),
                "median_lead_days": base.median_lead()},
            "baseline_returned_twice": {
                "name": "customer returned this product twice", **returns.summary(),
                "recall": None},
            "kinds": {k: v.summary() for k, v in sorted(kinds.items())},
            "target_sources": {k: v.summary() for k, v in sorted(sources.items())},
        }

    def _matched_decline_rule(self, outcomes: Outcomes, target: int, h: float
                              ) -> tuple[float | None, Judged,
                                         dict[tuple[str, str], list[float]]]:
        """The decline threshold whose judged alert count is closest to the target."""
        def run(threshold: float) -> tuple[Judged, dict[tuple[str, str], list[float]]]:
            tally = Judged()
            predicted: dict[tuple[str, str], list[float]] = defaultdict(list)
            chosen = ((c, p, d) for c, p, d, q in self.candidates
                      if q is not None and q >= threshold)
            for c, product, day in _cooled(chosen):
                dropped, _, lead, _ = judge(outcomes, c, product, None, day, h)
                tally.add(outcomes.judgeable(day, h), dropped, lead)
                predicted[(c, product)].append(day)
            return tally, predicted

        # from 99% down: alert counts only grow
        found = closest_volume((step / 100 for step in range(99, 0, -1)), run,
                               lambda r: r[0].alerts, target, counts="rise")
        if found is None:
            return None, Judged(), {}
        threshold, (tally, predicted) = found
        return threshold, tally, predicted


def judge(outcomes: Outcomes, customer: str, product: str, offer: str | None, day: float,
          h: float) -> tuple[bool, bool, float | None, bool]:
    """(dropped A, took B, lead days, ordered anything) in the horizon after `day`."""
    again = outcomes.buys_within(customer, product, day, h)
    took = outcomes.buys_within(customer, offer, day, h) if offer else None
    nxt = outcomes.next_order_after(customer, day)
    ordered = nxt is not None and nxt <= day + h
    signs = []
    if took is not None:
        signs.append(took)
    if ordered and nxt is not None and (again is None or nxt < again):
        signs.append(nxt)  # an order without A
    lead = min(signs) - day if signs else None
    return again is None, took is not None, lead, ordered


def _cooled(alerts: Any) -> list[tuple[str, str, float]]:
    """Alerts (customer, product, day) in time order, at most one per pair per cooldown."""
    last: dict[tuple[str, str], float] = {}
    out = []
    for c, product, day in alerts:
        seen = last.get((c, product))
        if seen is not None and day - seen < COOLDOWN_DAYS:
            continue
        last[(c, product)] = day
        out.append((c, product, day))
    return out


def drop_episodes(outcomes: Outcomes, h: float) -> list[tuple[str, str, float]]:
    """(customer, product, last purchase day): a regular product not bought again for the
    horizon while the customer kept ordering, inside the data."""
    out = []
    for (customer, product), days in outcomes.product_days.items():
        if len(days) < MIN_ORDERS:
            continue
        orders = outcomes.order_days[customer]
        for i in range(MIN_ORDERS - 1, len(days)):
            last = days[i]
            if not outcomes.judgeable(last, h):
                break
            if i + 1 < len(days) and days[i + 1] <= last + h:
                continue
            j = bisect.bisect_right(orders, last)
            if j < len(orders) and orders[j] <= last + h:
                out.append((customer, product, last))
    return out


def _recall(episodes: list[tuple[str, str, float]],
            predicted: dict[tuple[str, str], list[float]], h: float) -> float | None:
    hits = 0
    for customer, product, last in episodes:
        if any(last - h <= day <= last + 1e-9 for day in predicted.get((customer, product), ())):
            hits += 1
    return share(hits, len(episodes))
