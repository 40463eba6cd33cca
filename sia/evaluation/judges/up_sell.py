"""Up-sell: an alert is right when the customer crosses the break, or buys the upgrade, in time.

- `price_break` alerts name a product and a break quantity Q: right when the customer
  buys that product in a line of Q units or more within the horizon. Lead: days from the
  alert to that purchase.
- `upgrade` alerts name the upgrade product: right when the customer orders it within
  the horizon (a won deal is an order in the CRM import). Lead: days to that order.

Recall:
- price_break: the share of crossings preceded, within the horizon, by an alert about that
  customer and product. A crossing is a line at or above a price break of a product the
  customer last bought below that break (breaks as a price list would show them: learned
  prequentially by the same learner the detector uses, fed every order), late enough to
  be predicted (at least a horizon after the data starts).
- upgrade: the share of adoptions (a customer's first order of an upgrade product after
  having bought one of the entry products it upgrades) preceded within the horizon by
  an alert naming that upgrade.

Baselines, each on the same replay:
- price_break: "quantity of the product up X% quarter on quarter", the growth rule a CRM
  ships (units in the last 91 days against the 91 before), restricted to products the
  price list shows a break above the customer's line, naming the next break; at most one
  alert per customer and product per horizon; X is chosen so the rule raises as many
  judged alerts as the detector (matched volume). Under `baselines`: "line within X%
  below a price break" (the nudge a price book can show; its volume moves in big steps,
  so it is matched as closely as it goes), and the growth rule at +50% at its own volume.
- upgrade: "the account with the most won entry-tier deals": at each moment the detector
  raised an upgrade alert, the rule names the account with the most orders of
  entry-tier products so far (not named in the last horizon) that has not bought the
  upgrade of one of them, and that upgrade (of its most bought entry product first);
  same volume, same timing, only the choice differs.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from sia.detectors.rhythm import DAY
from sia.detectors.up_sell_breaks import PriceBreaks, next_break
from sia.evaluation.evaluate import Judged, alert_day, closest_volume, share
from sia.evaluation.judges import Evaluator, Judging, evaluator
from sia.evaluation.outcomes import Outcomes
from sia.events.models import Event, Order, Product
from sia.policy import Alert

QUARTER = 91.0
# rule settings tried for matched volume, each raising fewer alerts than the one before
GROWTH_STEPS = tuple(round(0.5 * 1.1**k, 3) for k in range(64))  # +50% ... about +20,000%
NEAR_STEPS = tuple(round(0.5 - 0.01 * k, 2) for k in range(51))  # within 50% ... 0%

# (customer, product, day, break quantity, growth, line quantity / break quantity)
RuleAlert = tuple[str, str, float, float, float, float]


class _History:
    """Every order line by (customer, product), with cumulative units for windows."""

    def __init__(self) -> None:
        self.days: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.quantities: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.cumulative: dict[tuple[str, str], list[float]] = defaultdict(list)

    def add(self, customer: str, product: str, day: float, quantity: float) -> None:
        key = (customer, product)
        cumulative = self.cumulative[key]
        self.days[key].append(day)
        self.quantities[key].append(quantity)
        cumulative.append((cumulative[-1] if cumulative else 0.0) + quantity)

    def units_between(self, key: tuple[str, str], start: float, end: float) -> float:
        """Units in (start, end]."""
        days, cumulative = self.days.get(key, []), self.cumulative.get(key, [])
        lo, hi = bisect.bisect_right(days, start), bisect.bisect_right(days, end)
        if hi <= lo:
            return 0.0
        return cumulative[hi - 1] - (cumulative[lo - 1] if lo else 0.0)

    def crosses_within(self, customer: str, product: str, day: float, quantity: float,
                       horizon: float) -> float | None:
        """Day of the first line of `quantity` or more in (day, day + horizon]."""
        key = (customer, product)
        days = self.days.get(key, [])
        quantities = self.quantities[key] if days else []
        for i in range(bisect.bisect_right(days, day), len(days)):
            if days[i] > day + horizon:
                break
            if quantities[i] >= quantity:
                return days[i]
        return None


@evaluator
class UpSellEvaluator(Evaluator):
    """Judges up-sell alerts against the growth rule and the most-entry-deals rule."""

    detector = "up_sell"

    def __init__(self) -> None:
        self.history = _History()
        self.price_list = PriceBreaks()
        self.product_index: dict[str, int] = {}
        self.rule_alerts: list[RuleAlert] = []
        self.crossings: list[tuple[str, str, float]] = []
        # upgrades
        self.upgrade_to: dict[str, list[str]] = {}
        self.upgrades_of: dict[str, list[str]] = defaultdict(list)  # upgrade -> entries
        self.entry: set[str] = set()
        self.entry_orders: dict[str, dict[str, int]] = defaultdict(dict)
        self.first_bought: dict[tuple[str, str], float] = {}
        self.adoptions: list[tuple[str, str, float]] = []
        self.upgrade_baseline: list[tuple[str, str | None, float]] = []
        self._picked: dict[str, float] = {}

    def see_event(self, event: Event) -> None:
        """Learn the price list and the history; note crossings and rule alerts."""
        if isinstance(event, Product):
            self.upgrade_to[event.product_id] = list(event.upgrade_to)
            for upgrade in event.upgrade_to:
                if event.product_id not in self.upgrades_of[upgrade]:
                    self.upgrades_of[upgrade].append(event.product_id)
            if event.tier == "entry":
                self.entry.add(event.product_id)
            return
        if not isinstance(event, Order):
            return
        day = event.occurred_at.timestamp() / DAY
        for line in event.lines:
            self._see_line(event.customer_id, line.product_id, day, line.quantity,
                           line.unit_price)

    def _see_line(self, customer: str, product: str, day: float, quantity: float,
                  price: float) -> None:
        key = (customer, product)
        index = self.product_index.get(product)
        if index is None:
            index = self.product_index[product] = len(self.product_index)
            self.price_list.grow(index + 1)
        ladder = self.price_list.add(index, quantity, price)
        previous = self.history.quantities.get(key)
        last = previous[-1] if previous else None
        self._see_upgrade(customer, product, day)
        self.history.add(customer, product, day, quantity)
        if not ladder:
            return
        if last is not None and any(last < b.quantity <= quantity for b in ladder):
            self.crossings.append((customer, product, day))
        brk = next_break(ladder, quantity)
        if brk is None or price <= brk.price:
            return
        now = self.history.units_between(key, day - QUARTER, day)
        before = self.history.units_between(key, day - 2 * QUARTER, day - QUARTER)
        growth = now / before - 1.0 if before > 0 else -1.0
        self.rule_alerts.append((customer, product, day, brk.quantity, growth,
                                 quantity / brk.quantity))

    def _see_upgrade(self, customer: str, product: str, day: float) -> None:
        key = (customer, product)
        if key not in self.first_bought:
            self.first_bought[key] = day
            for entry in self.upgrades_of.get(product, ()):
                first = self.first_bought.get((customer, entry))
                if first is not None and first < day:
                    self.adoptions.append((customer, product, day))
                    break
        if product in self.entry:
            counts = self.entry_orders[customer]
            counts[product] = counts.get(product, 0) + 1

    def see_alert(self, alert: Alert) -> None:
        """Upgrade alerts: ask the most-entry-deals rule at the same moment."""
        if alert.finding.kind != "upgrade":
            return
        day = alert_day(alert)
        best: tuple[int, str, str] | None = None  # entry deals, account, upgrade
        for customer, counts in self.entry_orders.items():
            picked = self._picked.get(customer)
            if picked is not None and day - picked < 90.0:
                continue
            total = sum(counts.values())
            if best is not None and total <= best[0]:
                continue  # ties: the account seen first
            for entry in sorted(counts, key=lambda p: (-counts[p], p)):
                offer = next((u for u in self.upgrade_to.get(entry, ())
                              if (customer, u) not in self.first_bought), None)
                if offer is not None:
                    best = (total, customer, offer)
                    break
        if best is None:
            self.upgrade_baseline.append(("", None, day))
            return
        _, customer, offer = best
        self._picked[customer] = day
        self.upgrade_baseline.append((customer, offer, day))

    def report(self, alerts: list[Alert], judging: Judging) -> dict[str, Any]:
        """Figures per kind, each with its baseline; the top level is the busiest kind."""
        h = judging.horizon
        kinds: dict[str, Any] = {}
        breaks = [a for a in alerts if a.finding.kind == "price_break"]
        upgrades = [a for a in alerts if a.finding.kind == "upgrade"]
        if breaks or not upgrades:
            kinds["price_break"] = self._report_breaks(breaks, judging)
        if upgrades:
            kinds["upgrade"] = self._report_upgrades(upgrades, judging.outcomes, h,
                                                     judging.customer_weeks_per_1k)
        main = max(kinds, key=lambda k: kinds[k]["alerts"] + kinds[k]["unjudged"])
        return {"judged_kind": main, **kinds[main], "kinds": kinds}

    # price breaks
    def _report_breaks(self, alerts: list[Alert], judging: Judging) -> dict[str, Any]:
        outcomes, h = judging.outcomes, judging.horizon
        named = [(a.finding.subject_id, str(a.finding.facts["product_id"]), alert_day(a),
                  float(a.finding.facts["break_quantity"])) for a in alerts]
        tally = self.judge_breaks(outcomes, named, h)
        if judging.precision_only:
            return {"alerts": tally.alerts, "unjudged": tally.unjudged,
                    "precision": tally.precision}
        recall = self._break_recall(outcomes, named, h)
        growth, base = self._matched(
            outcomes, tally.alerts, h, GROWTH_STEPS,
            lambda g: (r for r in self.rule_alerts if r[4] >= g))
        near, near_base = self._matched(
            outcomes, tally.alerts, h, NEAR_STEPS,
            lambda x: (r for r in self.rule_alerts if r[5] >= 1.0 - x))
        return {
            "alerts": tally.alerts,
            "unjudged": tally.unjudged,
            "precision": tally.precision,
            "recall": recall,
            "crossings": len(self._predictable(outcomes, h)),
            "median_lead_days": tally.median_lead(),
            "alerts_per_1k_customers_per_week": round(
                len(alerts) / judging.customer_weeks_per_1k, 3),
            "correct_if": "buys the product at the break quantity or more within the horizon",
            "baseline": self._rule_summary(
                f"quantity of the product up {growth * 100:,.0f}% quarter on quarter, "
                "break above", base, outcomes, h),
            "baselines": [
                self._rule_summary(f"line within {near:.0%} below a price break",
                                   near_base, outcomes, h),
                self._rule_summary(  # the growth rule as a CRM ships it, at its own volume
                    "quantity of the product up 50% quarter on quarter, break above "
                    "(unmatched volume)",
                    self._rule((r for r in self.rule_alerts if r[4] >= 0.5), h), outcomes, h),
            ],
        }

    def judge_breaks(self, outcomes: Outcomes, named: Iterable[tuple[str, str, float, float]],
                     h: float) -> Judged:
        """Judge (customer, product, day, break quantity) alerts."""
        tally = Judged()
        for customer, product, day, quantity in named:
            crossed = self.history.crosses_within(customer, product, day, quantity, h)
            tally.add(outcomes.judgeable(day, h), crossed is not None,
                      None if crossed is None else crossed - day)
        return tally

    def _rule(self, selected: Iterable[RuleAlert], h: float
              ) -> list[tuple[str, str, float, float]]:
        """A rule's alerts: at most one per customer and product per horizon."""
        last: dict[tuple[str, str], float] = {}
        out = []
        for customer, product, day, quantity, _, _ in selected:
            previous = last.get((customer, product))
            if previous is not None and day - previous < h:
                continue
            last[(customer, product)] = day
            out.append((customer, product, day, quantity))
        return out

    def _matched(self, outcomes: Outcomes, target: int, h: float, steps: tuple[float, ...],
                 select: Callable[[float], Iterable[RuleAlert]]
                 ) -> tuple[float, list[tuple[str, str, float, float]]]:
        """The rule setting whose judged alert count is closest to the target."""
        found = closest_volume(
            steps, lambda step: self._rule(select(step), h),
            lambda alerts: sum(1 for _, _, day, _ in alerts if outcomes.judgeable(day, h)),
            target, counts="fall")
        assert found is not None
        return found

    def _rule_summary(self, name: str, alerts: list[tuple[str, str, float, float]],
                      outcomes: Outcomes, h: float) -> dict[str, Any]:
        tally = self.judge_breaks(outcomes, alerts, h)
        return {"name": name, "alerts": tally.alerts, "unjudged": tally.unjudged,
                "precision": tally.precision,
                "recall": self._break_recall(outcomes, alerts, h),
                "median_lead_days": tally.median_lead()}

    def _predictable(self, outcomes: Outcomes, h: float) -> list[tuple[str, str, float]]:
        return [c for c in self.crossings if c[2] - h >= outcomes.first_day]

    def _break_recall(self, outcomes: Outcomes,
                      named: Iterable[tuple[str, str, float, float]], h: float) -> float | None:
        by_pair: dict[tuple[str, str], list[float]] = defaultdict(list)
        for customer, product, day, _ in named:
            by_pair[(customer, product)].append(day)
        crossings = self._predictable(outcomes, h)
        hits = sum(1 for c, p, day in crossings
                   if any(day - h <= d < day for d in by_pair.get((c, p), ())))
        return share(hits, len(crossings))

    # upgrades
    def _report_upgrades(self, alerts: list[Alert], outcomes: Outcomes, h: float,
                         per_week: float) -> dict[str, Any]:
        named = [(a.finding.subject_id, str(a.finding.facts["product_id"]), alert_day(a))
                 for a in alerts]
        tally = _judge_orders(outcomes, named, h)
        base_named = [(c, p, d) for c, p, d in self.upgrade_baseline if p is not None]
        base = _judge_orders(outcomes, base_named, h)
        return {
            "alerts": tally.alerts,
            "unjudged": tally.unjudged,
            "precision": tally.precision,
            "recall": self._upgrade_recall(outcomes, named, h),
            "adoptions": len(self._adoptions(outcomes, h)),
            "median_lead_days": tally.median_lead(),
            "alerts_per_1k_customers_per_week": round(len(alerts) / per_week, 3),
            "correct_if": "orders the upgrade product within the horizon",
            "baseline": {"name": ("account with the most won entry-tier deals, upgrade not "
                                  "bought (same moments)"),
                         "alerts": base.alerts, "unjudged": base.unjudged,
                         "precision": base.precision,
                         "recall": self._upgrade_recall(outcomes, base_named, h),
                         "median_lead_days": base.median_lead(),
                         "no_suggestion": sum(1 for _, p, _ in self.upgrade_baseline
                                              if p is None)},
        }

    def _adoptions(self, outcomes: Outcomes, h: float) -> list[tuple[str, str, float]]:
        return [a for a in self.adoptions if a[2] - h >= outcomes.first_day]

    def _upgrade_recall(self, outcomes: Outcomes, named: list[tuple[str, str, float]],
                        h: float) -> float | None:
        by_pair: dict[tuple[str, str], list[float]] = defaultdict(list)
        for customer, product, day in named:
            by_pair[(customer, product)].append(day)
        adoptions = self._adoptions(outcomes, h)
        hits = sum(1 for c, p, day in adoptions
                   if any(day - h <= d < day for d in by_pair.get((c, p), ())))
        return share(hits, len(adoptions))


def _judge_orders(outcomes: Outcomes, named: Iterable[tuple[str, str, float]],
                  h: float) -> Judged:
    tally = Judged()
    for customer, product, day in named:
        bought = outcomes.buys_within(customer, product, day, h)
        tally.add(outcomes.judgeable(day, h), bought is not None,
                  None if bought is None else bought - day)
    return tally
