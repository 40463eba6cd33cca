"""Margin: a drop alert is right when the subject's margin stays below its pre-alert level.

The level of a subject (a customer, a rep, a product) over a time window is its
revenue-weighted margin, sum(profit) / sum(revenue) over its costed lines in the window
(margin mode: any line of the subject has a cost, from the line or the catalogue), else
its price realisation, sum(paid) / sum(quantity x reference price), the reference being
the line's (or catalogue's) list price, else the product's median unit price over the
whole data (hindsight is allowed to the judge), a line counting as paid at most three times
its reference (so a few odd prices, postage or manual lines, cannot swamp the level).

A drop alert raised on day d about a drop that began on day s (the detector's `since`: the
first low order or period of the run; for the baseline rule, the order it fired on, s = d)
is judged by the subject's orders:
- before = level over [s - 365, s) (the usual level in the year before the drop began);
- after = level over (d, d + horizon];
- correct when after < before: the erosion lasted the whole horizon on average;
- unjudged when the data ends before d + horizon; `no_outcome` when the subject has no
  priced order in the horizon after, or none in the year before (counted apart, left out
  of precision); `alerts` counts judged alerts with an outcome, precision = correct /
  alerts;
- lead: days from the alert to the subject's next order priced below `before` (the next
  loss the alert warned about), over correct alerts.

Baseline, the rule a CRM ships with: "margin below X%" (price realisation below X when no
cost is known) on each order of a customer or a rep and each order line of a product, at
most once per subject per 30 days, with X set per subject kind so that the rule raises as
many judged alerts with an outcome as the detector (matched volume). For scale, each
subject kind also reports the rule at a fixed CRM default (`fixed_rule`: margin below 0%,
or price realisation below 80%), whatever its volume.

Recall: the share of erosion episodes caught. An episode is a subject and a window of
`horizon` days (consecutive windows from a horizon after the data starts) whose level is
at least 5 points below the subject's level over the year before the window (or since the
data starts); it is caught when an alert about the subject fell in the window or in the
horizon before it.

Volume: alerts_per_1k_customers_per_week counts every drop alert (judged or not, of every
subject kind) per 1,000 customers with orders per week of data. Figures are also given per
subject kind (`kinds`, each with its own matched rule) and per cause (`causes`);
`recovered` counts the recovery findings.
"""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sia.detectors.rhythm import DAY
from sia.evaluation.evaluate import Judged, alert_day, share
from sia.evaluation.judges import Evaluator, Judging, evaluator
from sia.evaluation.outcomes import Outcomes
from sia.events.models import Customer, Event, Order, Product
from sia.policy import Alert

HISTORY_DAYS = 365.0
RULE_COOLDOWN_DAYS = 30.0
FIXED_FLOOR = 0.0  # the usual CRM default, shown for scale (not matched)
FIXED_REALISATION = 0.8  # "discount above 20%" when no cost is known
EPISODE_DROP = 0.05
KINDS = ("customer", "rep", "product")
# (product id, quantity, unit price, list price, unit cost)
Line = tuple[str, float, float, float | None, float | None]
Subject = tuple[str, str]  # (subject kind, id)
Raised = tuple[str, float, float]  # (subject id, alert day, day the drop began)
EPOCH = date(1970, 1, 1).toordinal()


@dataclass
class Series:
    """One subject's observations in time order, with prefix sums for window levels."""

    days: list[float] = field(default_factory=list)
    sums: list[tuple[float, float, float, float]] = field(default_factory=list)  # R P L Q
    margin: bool = False
    prefix: list[tuple[float, float, float, float]] = field(default_factory=list)
    levels: list[float | None] = field(default_factory=list)  # of each observation

    def add(self, day: float, rev: float, profit: float, ref: float, paid: float) -> None:
        """One observation (orders arrive in time order)."""
        if self.days and day == self.days[-1]:
            r, p, l_, q = self.sums[-1]
            self.sums[-1] = (r + rev, p + profit, l_ + ref, q + paid)
        else:
            self.days.append(day)
            self.sums.append((rev, profit, ref, paid))

    def freeze(self) -> None:
        """Mode and prefix sums, once all observations are in."""
        order = sorted(range(len(self.days)), key=self.days.__getitem__)
        self.days = [self.days[i] for i in order]
        self.sums = [self.sums[i] for i in order]
        self.margin = any(s[0] > 0.0 for s in self.sums)
        r = p = l_ = q = 0.0
        self.prefix = [(0.0, 0.0, 0.0, 0.0)]
        for rev, profit, ref, paid in self.sums:
            r, p, l_, q = r + rev, p + profit, l_ + ref, q + paid
            self.prefix.append((r, p, l_, q))
        self.levels = [self.level_of(x) for x in self.sums]

    def level_of(self, s: tuple[float, float, float, float]) -> float | None:
        """Margin or price realisation of sums; None when undefined."""
        if self.margin:
            return s[1] / s[0] if s[0] > 0.0 else None
        return s[3] / s[2] if s[2] > 0.0 else None

    def level(self, start: float, end: float) -> float | None:
        """Level over the observations in (start, end]."""
        lo = bisect.bisect_right(self.days, start)
        hi = bisect.bisect_right(self.days, end)
        if hi <= lo:
            return None
        a, b = self.prefix[lo], self.prefix[hi]
        return self.level_of((b[0] - a[0], b[1] - a[1], b[2] - a[2], b[3] - a[3]))

    def next_below(self, day: float, until: float, below: float) -> float | None:
        """Day of the first observation in (day, until] priced below `below`."""
        i = bisect.bisect_right(self.days, day)
        while i < len(self.days) and self.days[i] <= until:
            value = self.levels[i]
            if value is not None and value < below:
                return self.days[i]
            i += 1
        return None


@evaluator
class MarginEvaluator(Evaluator):
    """Judges margin drop alerts against the fixed "margin below X%" rule at matched volume."""

    detector = "margin"

    def __init__(self) -> None:
        self.catalog: dict[str, tuple[float | None, float | None]] = {}
        self.owner: dict[str, str] = {}
        self.orders: list[tuple[float, str, str | None, list[Line]]] = []

    def see_event(self, event: Event) -> None:
        """Keep orders (priced with the catalogue as known then) and reference data."""
        if isinstance(event, Product):
            self.catalog[event.product_id] = (event.list_price, event.unit_cost)
        elif isinstance(event, Customer):
            if event.owner_rep_id:
                self.owner[event.customer_id] = event.owner_rep_id
        elif isinstance(event, Order):
            lines = []
            for line in event.lines:
                list_price, cost = line.list_price, line.unit_cost
                if list_price is None or cost is None:
                    known = self.catalog.get(line.product_id, (None, None))
                    list_price = known[0] if list_price is None else list_price
                    cost = known[1] if cost is None else cost
                lines.append((line.product_id, line.quantity, line.unit_price, list_price,
                              cost))
            rep = event.rep_id or self.owner.get(event.customer_id)
            self.orders.append((event.occurred_at.timestamp() / DAY, event.customer_id, rep,
                                lines))

    def report(self, alerts: list[Alert], judging: Judging) -> dict[str, Any]:
        """Figures per subject kind and together, against the matched floor rule."""
        series = self._series()
        h = judging.horizon
        outcomes = judging.outcomes
        drops = [a for a in alerts if a.finding.kind != "recovered"]
        by_kind: dict[str, list[Raised]] = defaultdict(list)
        causes: dict[str, list[tuple[str, Raised]]] = defaultdict(list)
        for a in drops:
            f = a.finding
            day = alert_day(a)
            since = f.facts.get("since")
            start = date.fromisoformat(since).toordinal() - EPOCH if since else day
            by_kind[f.subject_kind].append((f.subject_id, day, min(start, day)))
            causes[f.kind].append((f.subject_kind, (f.subject_id, day, min(start, day))))
        kinds: dict[str, Any] = {}
        total, base_total = _Tally(), _Tally()
        episodes_all: list[tuple[Subject, float]] = []
        caught: set[tuple[Subject, float]] = set()
        base_caught: set[tuple[Subject, float]] = set()
        rule_names = []
        for kind in KINDS:
            subjects = {sid: s for (k, sid), s in series.items() if k == kind}
            mine = _judge(subjects, by_kind.get(kind, []), h, outcomes)
            episodes = _episodes(subjects, outcomes, h)
            hit = _caught(episodes, by_kind.get(kind, []), h)
            threshold, rule = _matched_rule(subjects, mine.decided, h, outcomes)
            base = _judge(subjects, rule, h, outcomes)
            base_hit = _caught(episodes, rule, h)
            total.merge(mine)
            base_total.merge(base)
            episodes_all += [((kind, s), w) for s, w in episodes]
            caught |= {((kind, s), w) for s, w in hit}
            base_caught |= {((kind, s), w) for s, w in base_hit}
            what = "margin" if _margin_kind(subjects) else "price realisation"
            name = (f"{what} below {threshold:.1%}" if threshold is not None and rule
                    else "not run (no alerts)" if threshold is None
                    else "no threshold raises as many alerts")
            rule_names.append(f"{kind}s: {name}")
            fixed = FIXED_FLOOR if what == "margin" else FIXED_REALISATION
            plain = _judge(subjects, _rule(subjects, fixed), h, outcomes) if subjects \
                else _Tally()
            kinds[kind] = {**mine.summary(), "recall": share(len(hit), len(episodes)),
                           "episodes": len(episodes),
                           "baseline": {"name": name, **base.summary(),
                                        "recall": share(len(base_hit), len(episodes))},
                           "fixed_rule": {"name": f"{what} below {fixed:.0%} (volume not "
                                                  f"matched)", **plain.summary()}}
        cause_figures = {}
        for cause, items in sorted(causes.items()):
            tally = _Tally()
            for kind, raised in items:
                sid = raised[0]
                tally.merge(_judge({sid: series[(kind, sid)]} if (kind, sid) in series else {},
                                   [raised], h, outcomes))
            cause_figures[cause] = {"alerts": tally.decided, "precision": tally.precision}
        recovered = sum(1 for a in alerts if a.finding.kind == "recovered")
        return {
            **total.summary(),
            "recall": share(len(caught), len(episodes_all)),
            "episodes": len(episodes_all),
            "alerts_per_1k_customers_per_week": round(len(drops) / judging.customer_weeks_per_1k,
                                                      3),
            "baseline": {"name": "; ".join(rule_names) + f" (once per subject per "
                                                         f"{RULE_COOLDOWN_DAYS:.0f} days, "
                                                         f"matched volume per kind)",
                         **base_total.summary(),
                         "recall": share(len(base_caught), len(episodes_all))},
            "kinds": kinds,
            "causes": cause_figures,
            "recovered": recovered,
            "correct_if": "the subject's margin (price realisation without costs) over the "
                          "horizon after the alert is below its level over the year before",
        }

    def _series(self) -> dict[Subject, Series]:
        """Observations per subject, priced as the module docstring says."""
        prices: dict[str, list[float]] = defaultdict(list)
        for _, _, _, lines in self.orders:
            for product, _, price, _, _ in lines:
                if price > 0.0:
                    prices[product].append(price)
        median = {p: statistics.median(v) for p, v in prices.items()}
        series: dict[Subject, Series] = defaultdict(Series)
        for day, customer, rep, lines in self.orders:
            rev = profit = ref = paid = 0.0
            for product, quantity, price, list_price, cost in lines:
                amount = quantity * price
                r = p = 0.0
                if cost is not None:
                    r, p = amount, amount - quantity * cost
                unit_ref = list_price or median.get(product, 0.0)
                l_ = quantity * unit_ref
                q = min(amount, 3.0 * l_)
                series[("product", product)].add(day, r, p, l_, q)
                rev, profit, ref, paid = rev + r, profit + p, ref + l_, paid + q
            series[("customer", customer)].add(day, rev, profit, ref, paid)
            if rep is not None:
                series[("rep", rep)].add(day, rev, profit, ref, paid)
        for s in series.values():
            s.freeze()
        return dict(series)


@dataclass
class _Tally:
    """Judged alerts with an outcome, and those without."""

    judged: Judged = field(default_factory=Judged)
    no_outcome: int = 0

    @property
    def decided(self) -> int:
        """Judged alerts with an outcome."""
        return self.judged.alerts

    @property
    def precision(self) -> float | None:
        """Share of decided alerts that were right."""
        return self.judged.precision

    def merge(self, other: _Tally) -> None:
        """Add another tally."""
        self.judged.alerts += other.judged.alerts
        self.judged.correct += other.judged.correct
        self.judged.unjudged += other.judged.unjudged
        self.judged.leads += other.judged.leads
        self.no_outcome += other.no_outcome

    def summary(self) -> dict[str, Any]:
        """alerts, unjudged, no_outcome, precision, median_lead_days."""
        return {**self.judged.summary(), "no_outcome": self.no_outcome}


def _judge(subjects: dict[str, Series], alerts: Iterable[Raised], h: float,
           outcomes: Outcomes) -> _Tally:
    tally = _Tally()
    for subject, day, since in alerts:
        if not outcomes.judgeable(day, h):
            tally.judged.add(False, False, None)
            continue
        s = subjects.get(subject)
        before = s.level(since - HISTORY_DAYS - 1e-9, since - 1e-9) if s else None
        after = s.level(day, day + h) if s else None
        if s is None or before is None or after is None:
            tally.no_outcome += 1
            continue
        correct = after < before
        nxt = s.next_below(day, day + h, before) if correct else None
        tally.judged.add(True, correct, None if nxt is None else nxt - day)
    return tally


def _margin_kind(subjects: dict[str, Series]) -> bool:
    return sum(s.margin for s in subjects.values()) * 2 >= len(subjects) > 0


def _rule(subjects: dict[str, Series], threshold: float) -> list[Raised]:
    """'Level below threshold' on each observation, once per subject per cooldown."""
    out = []
    for subject, s in subjects.items():
        last = -1e18
        for day, value in zip(s.days, s.levels, strict=True):
            if value is not None and value < threshold and day - last >= RULE_COOLDOWN_DAYS:
                out.append((subject, day, day))
                last = day
    return out


def _matched_rule(subjects: dict[str, Series], target: int, h: float,
                  outcomes: Outcomes) -> tuple[float | None, list[Raised]]:
    """The threshold whose rule raises about `target` judged alerts with an outcome."""
    if target <= 0 or not subjects:
        return None, []

    def decided(threshold: float) -> tuple[int, list[Raised]]:
        alerts = _rule(subjects, threshold)
        return _judge(subjects, alerts, h, outcomes).decided, alerts

    lo, hi = -10.0, 2.0  # the count grows with the threshold
    best: tuple[int, float, list[Raised]] | None = None
    for _ in range(30):
        mid = (lo + hi) / 2
        count, alerts = decided(mid)
        if best is None or abs(count - target) < best[0]:
            best = (abs(count - target), mid, alerts)
        if count == target:
            break
        lo, hi = (mid, hi) if count < target else (lo, mid)
    assert best is not None
    return best[1], best[2]


def _episodes(subjects: dict[str, Series], outcomes: Outcomes,
              h: float) -> list[tuple[str, float]]:
    """(subject, window start) of sustained drops: a window's level 5 points under the year
    before it."""
    out = []
    start = outcomes.first_day + h  # at least a horizon of history
    windows = []
    while start + h <= outcomes.last_day:
        windows.append(start)
        start += h
    for subject, s in subjects.items():
        for w in windows:
            now = s.level(w, w + h)
            if now is None:
                continue
            before = s.level(w - HISTORY_DAYS, w)
            if before is not None and now <= before - EPISODE_DROP:
                out.append((subject, w))
    return out


def _caught(episodes: list[tuple[str, float]], alerts: list[Raised],
            h: float) -> list[tuple[str, float]]:
    """Episodes with an alert about the subject in the window or the horizon before it."""
    days: dict[str, list[float]] = defaultdict(list)
    for subject, day, _ in alerts:
        days[subject].append(day)
    for v in days.values():
        v.sort()
    hit = []
    for subject, w in episodes:
        d = days.get(subject, [])
        i = bisect.bisect_left(d, w - h)
        if i < len(d) and d[i] < w + h:
            hit.append((subject, w))
    return hit

