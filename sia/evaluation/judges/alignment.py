"""Alignment: a segment-misfit alert is right when the misfit persists.

`segment_value` alerts say "this customer buys like the top of their segment, far above
its typical customer". Correct: over the horizon after the alert (from the end of the
alert's day), the customer still out-spends at least 90% of the other customers of their
segment who had ordered by then (customers who buy nothing in the horizon count, with 0):
the customer keeps behaving unlike their segment. Lead time: not defined (the claim is
about a state, not an event to come); reported as None.

Baseline: the fixed CRM rule "trailing-year spend above X" (the same X for every
segment), raised at the order that takes the customer's spend over the last 365 days
past X (one alert per crossing), with X chosen on a 5% grid so that it raises as many
judged alerts as the detector (matched volume), judged the same way.

Recall: persistent misfits are (customer, quarter) pairs, quarters counted from the
start of the data, where the customer out-spends 90% of their segment's other customers
in that quarter and in the next one; one is caught when an alert for the customer fell
inside the first quarter. `base_rate`: the share of customers on top of their segment in
a quarter who are still on top the next quarter (what knowing "they were on top" alone
is worth).

`no_contact` alerts are judged apart (under `kinds`), as right when the neglected key
account spends less in the horizon after the alert than in the one before. Only data
with a contact log (interactions or opportunities) can raise them. `owner_mismatch`
alerts state a fact of the reference data: counted, not judged.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from sia.evaluation.evaluate import Judged, alert_day, closest_volume, share
from sia.evaluation.judges import Evaluator, Judging, evaluator
from sia.evaluation.outcomes import Outcomes
from sia.events.models import Customer, Event
from sia.policy import Alert

TOP_SHARE = 0.9  # out-spends this share of the segment's other customers
YEAR = 365.0


class SegmentWindows:
    """Spend of every customer of a segment over a window, sorted, cached per day."""

    def __init__(self, outcomes: Outcomes, segment_of: dict[str, str | None], h: float) -> None:
        self.outcomes = outcomes
        self.h = h
        self.members: dict[str | None, list[str]] = defaultdict(list)
        for customer in outcomes.customers:
            self.members[segment_of.get(customer)].append(customer)
        self._cache: dict[tuple[str | None, int], list[float]] = {}

    def start(self, day: float) -> int:
        """Windows start at the end of the alert's day."""
        return int(day) + 1

    def spends(self, segment: str | None, day: float) -> list[float]:
        """Sorted spends over the window after `day` of the segment's customers so far."""
        start = self.start(day)
        key = (segment, start)
        cached = self._cache.get(key)
        if cached is None:
            o = self.outcomes
            cached = sorted(o.spend_between(c, start, start + self.h)
                            for c in self.members.get(segment, [])
                            if o.order_days[c][0] <= start)
            self._cache[key] = cached
        return cached

    def top(self, customer: str, segment: str | None, day: float) -> bool:
        """The customer out-spends TOP_SHARE of the segment's other customers."""
        start = self.start(day)
        own = self.outcomes.spend_between(customer, start, start + self.h)
        spends = self.spends(segment, day)
        peers = len(spends) - (1 if self.outcomes.order_days[customer][0] <= start else 0)
        if peers <= 0:
            return False
        below = bisect.bisect_left(spends, own)
        return below >= TOP_SHARE * peers


def crossings(outcomes: Outcomes) -> list[tuple[str, float, float, float]]:
    """(customer, order day, trailing-year spend just before, just after) of every order."""
    out = []
    for customer, days in outcomes.order_days.items():
        values = outcomes.order_values[customer]
        cum = [0.0]
        for v in values:
            cum.append(cum[-1] + v)
        for i, day in enumerate(days):
            lo = bisect.bisect_right(days, day - YEAR)
            before = cum[i] - cum[lo]
            out.append((customer, day, before, before + values[i]))
    return out


def rule_alerts(orders: Sequence[tuple[str, float, float, float]],
                x: float) -> list[tuple[str, float]]:
    """"Trailing-year spend above X": the orders that take it past X."""
    return [(c, day) for c, day, before, after in orders if before < x <= after]


def _thresholds(start: float) -> Iterator[float]:
    """start, then 5% more each step, without end."""
    x = start
    while True:
        yield x
        x *= 1.05


@evaluator
class AlignmentEvaluator(Evaluator):
    """Judges segment misfits against a fixed spend threshold."""

    detector = "alignment"

    def __init__(self) -> None:
        self.segment_of: dict[str, str | None] = {}

    def see_event(self, event: Event) -> None:
        """Segments from the reference data."""
        if isinstance(event, Customer):
            self.segment_of[event.customer_id] = event.segment

    def report(self, alerts: list[Alert], judging: Judging) -> dict[str, Any]:
        """Figures for segment misfits and the matched rule; contact and owner alerts apart."""
        o, h = judging.outcomes, judging.horizon
        windows = SegmentWindows(o, self.segment_of, h)
        misfits = [(a.finding.subject_id, alert_day(a)) for a in alerts
                   if a.finding.kind == "segment_value"]
        tally = self._tally(windows, misfits)
        orders = crossings(o)
        x, base_alerts = self._matched(windows, orders, tally.alerts)
        base = self._tally(windows, base_alerts)
        episodes, tops = self._persistent(windows)
        contact = Judged()
        for a in alerts:
            if a.finding.kind == "no_contact":
                day, c = alert_day(a), a.finding.subject_id
                contact.add(o.judgeable(day, h),
                            o.spend_between(c, day, day + h) < o.spend_between(c, day - h, day),
                            None)
        return {
            "judged_kind": "segment_value",
            "correct_if": f"in the horizon after the alert the customer out-spends "
                          f"{TOP_SHARE:.0%} of their segment's other customers",
            "alerts": tally.alerts,
            "unjudged": tally.unjudged,
            "precision": tally.precision,
            "recall": self._recall(episodes, misfits, h, o),
            "persistent_misfits": len(episodes),
            "base_rate": share(len(episodes), tops),
            "median_lead_days": None,
            "alerts_per_1k_customers_per_week": round(
                len(misfits) / judging.customer_weeks_per_1k, 3),
            "baseline": {"name": f"trailing-year spend above {x:,.0f}" if tally.alerts
                         else "trailing-year spend above X: no judged alerts to match",
                         "alerts": base.alerts,
                         "unjudged": base.unjudged, "precision": base.precision,
                         "recall": self._recall(episodes, base_alerts, h, o),
                         "median_lead_days": None},
            "kinds": {
                "no_contact": {**contact.summary(),
                               "correct_if": "spend in the horizon after < spend in the "
                                             "horizon before"},
                "owner_mismatch": {"alerts": sum(1 for a in alerts
                                                 if a.finding.kind == "owner_mismatch"),
                                   "judged": False},
            },
        }

    def _tally(self, windows: SegmentWindows, alerts: Sequence[tuple[str, float]]) -> Judged:
        tally = Judged()
        o = windows.outcomes
        for customer, day in alerts:
            judgeable = o.judgeable(windows.start(day) + windows.h, 0.0)
            tally.add(judgeable, judgeable and windows.top(
                customer, self.segment_of.get(customer), day), None)
        return tally

    def _matched(self, windows: SegmentWindows, orders: Sequence[tuple[str, float, float, float]],
                 target: int) -> tuple[float, list[tuple[str, float]]]:
        """The threshold X (5% steps from 10) whose judged alerts come closest to target."""
        o = windows.outcomes
        end = o.last_day - windows.h
        if target <= 0:
            return 10.0, []
        # 5% steps from 10, without end: once X is above every order the count is 0, which
        # is below the target, so the search always stops
        found = closest_volume(
            _thresholds(10.0),
            lambda x: rule_alerts(orders, x),
            lambda alerts: sum(1 for _, d in alerts if windows.start(d) <= end),
            target, counts="fall")
        assert found is not None
        return found

    def _persistent(self, windows: SegmentWindows) -> tuple[list[tuple[str, float]], int]:
        """(customer, quarter start) where the customer tops their segment two quarters
        running; and how many tops had a next quarter to look at (the base rate's whole)."""
        o, h = windows.outcomes, windows.h
        out, tops = [], 0
        start = o.first_day
        while start + 2 * h <= o.last_day:
            for customer in o.customers:
                if o.order_days[customer][0] > start:
                    continue
                segment = self.segment_of.get(customer)
                if windows.top(customer, segment, start - 1):
                    tops += 1
                    if windows.top(customer, segment, start + h - 1):
                        out.append((customer, start))
            start += h
        return out, tops

    @staticmethod
    def _recall(episodes: list[tuple[str, float]], alerts: Sequence[tuple[str, float]],
                h: float, outcomes: Outcomes) -> float | None:
        by_customer: dict[str, list[float]] = defaultdict(list)
        for customer, day in alerts:
            by_customer[customer].append(day)
        hits = sum(1 for customer, start in episodes
                   if any(start <= d < start + h for d in by_customer.get(customer, ())))
        return share(hits, len(episodes))
