"""Trend: a heating-up alert is right when the rise lasts.

Correct: over the horizon after the alert the customer spends at least 10% more than
their usual spend per horizon before the rise: spend(t, t + h] > 1.1 x U, where U is
their spend over the data before t - h (up to a year of it) scaled to one horizon. The
rise being judged lies in (t - h, t]; alerts with less than a horizon of data before it
cannot say what usual was and count as unjudged. The alert says "spending well above
usual lately"; it is right when that was not a one-off peak that fades back to the old
level.

The literal reading "more than in the equal period just before the alert",
spend(t, t + h] > 1.1 x spend(t - h, t], is reported too (`continued_precision`, with
its base rate `continued_base_rate`): that period holds the rise itself, so it asks
for acceleration on top of the rise. Spend reverts towards the mean, and on this
reading every heating-up rule, the detector and the CRM rule alike, scores below the
share of random orders it would get right.

Lead time: days from the alert to the moment the customer's spend since the alert
passes 1.1 x U, when anyone would know the new level held.

Baseline: "spend up K quarter on quarter", the CRM rule the issue names (K = 50% by
default): spend(t - h, t] >= (1 + K) x spend(t - 2h, t - h] > 0, checked at every moment
the two windows change (an order arrives or leaves a window), alerting when the rule
turns true (one alert per crossing). K is chosen (5% steps to 300%, then 25% steps to
2000%) so the rule raises as many judged alerts as the detector (matched volume); the
default 50% rule's own figures are under `kinds.rule_50_percent`.

Recall: lasting rises are the customer-months (a grid of 30 days, from two horizons
after the start of the data) where an existing customer's spend over the last horizon
and over the next one both beat 1.1 x U; a rise is caught when an alert for the customer
fell in the 30 days before that grid day. `base_rate`: the share of all judgeable
orders (of customers who ordered a horizon earlier) after which the criterion held:
what alerting at random orders would score.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

from sia.evaluation.evaluate import Judged, alert_day, closest_volume, share
from sia.evaluation.judges import Evaluator, Judging, evaluator
from sia.evaluation.outcomes import Outcomes
from sia.policy import Alert

MARGIN = 0.1  # "exceeds by a margin": 10% more
GRID_DAYS = 30.0
USUAL_DAYS = 365.0  # "usual" before the rise: up to a year of data
DEFAULT_RULE = 0.5  # the "spend up 50% quarter on quarter"


def _cumulative(outcomes: Outcomes, customer: str) -> tuple[list[float], list[float]]:
    days = outcomes.order_days.get(customer, [])
    cum = [0.0]
    for value in outcomes.order_values.get(customer, []):
        cum.append(cum[-1] + value)
    return days, cum


def _spend(days: list[float], cum: list[float], start: float, end: float) -> float:
    """Order value in (start, end]."""
    return cum[bisect.bisect_right(days, end)] - cum[bisect.bisect_right(days, start)]


def usual_before(outcomes: Outcomes, days: list[float], cum: list[float], day: float,
                 h: float) -> float | None:
    """The customer's usual spend per horizon before the rise: their spend over up to a
    year of data before (day - h], per horizon; None with less than a horizon of data."""
    end = day - h
    start = max(outcomes.first_day, end - USUAL_DAYS)
    if end - start < h:
        return None
    return _spend(days, cum, start - 1e-9, end) * h / (end - start)


def judge_rise(outcomes: Outcomes, customer: str, day: float,
               h: float) -> tuple[bool | None, bool, float | None]:
    """(rise held, rise continued, lead days) of a heating-up claim at `day`; held is None
    when the data before the rise is too short to say what usual was."""
    days, cum = _cumulative(outcomes, customer)
    just_before = _spend(days, cum, day - h, day)
    after = _spend(days, cum, day, day + h)
    before_rise = usual_before(outcomes, days, cum, day, h)
    if before_rise is None:
        return None, after > (1 + MARGIN) * just_before, None
    held = after > (1 + MARGIN) * before_rise
    lead = None
    if held:
        mark = (1 + MARGIN) * before_rise
        start = bisect.bisect_right(days, day)
        base = cum[start]
        for i in range(start, len(days)):
            if cum[i + 1] - base > mark:
                lead = days[i] - day
                break
    return held, after > (1 + MARGIN) * just_before, lead


def rule_moments(outcomes: Outcomes, h: float) -> list[tuple[str, list[tuple[float, float]]]]:
    """Per customer, (moment, this quarter's spend / last quarter's) at every moment the
    two windows change (an order arrives or leaves a window); 0 when last quarter is 0."""
    out = []
    for customer, days in outcomes.order_days.items():
        _, cum = _cumulative(outcomes, customer)
        series = []
        for m in sorted({m for d in days for m in (d, d + h + 1e-6, d + 2 * h + 1e-6)}):
            if m > outcomes.last_day:
                break
            now = _spend(days, cum, m - h, m)
            prev = _spend(days, cum, m - 2 * h, m - h)
            series.append((m, now / prev if prev > 0 else 0.0))
        out.append((customer, series))
    return out


def rule_alerts(moments: list[tuple[str, list[tuple[float, float]]]],
                k: float) -> list[tuple[str, float]]:
    """"Spend up k quarter on quarter": (customer, day) each time the rule turns true."""
    out = []
    for customer, series in moments:
        on = False
        for m, ratio in series:
            hit = ratio >= 1 + k
            if hit and not on:
                out.append((customer, m))
            on = hit
    return out


def judgeable(outcomes: Outcomes, day: float, h: float) -> bool:
    """The data covers the horizon after `day` and, before it, the rise and a usual."""
    return outcomes.judgeable(day, h) and day >= outcomes.first_day + 2 * h


def _tally(outcomes: Outcomes, alerts: Sequence[tuple[str, float]],
           h: float) -> tuple[Judged, Judged]:
    """(held, continued) tallies of (customer, day) alerts."""
    held, continued = Judged(), Judged()
    for customer, day in alerts:
        ok, more, lead = judge_rise(outcomes, customer, day, h)
        judgeable = outcomes.judgeable(day, h)
        held.add(judgeable and ok is not None, bool(ok), lead)
        continued.add(judgeable, more, None)
    return held, continued


def rises(outcomes: Outcomes, h: float) -> list[tuple[str, float]]:
    """Customer-months with a lasting rise: the last horizon and the next both beat the
    usual before by the margin."""
    out = []
    for customer, days in outcomes.order_days.items():
        _, cum = _cumulative(outcomes, customer)
        grid = outcomes.first_day + 2 * h
        while grid + h <= outcomes.last_day:
            usual = usual_before(outcomes, days, cum, grid, h)
            if usual is not None and days[0] <= grid - h:
                mark = (1 + MARGIN) * usual
                if (_spend(days, cum, grid - h, grid) > mark
                        and _spend(days, cum, grid, grid + h) > mark):
                    out.append((customer, grid))
            grid += GRID_DAYS
    return out


def base_rates(outcomes: Outcomes, h: float) -> tuple[float | None, float | None]:
    """Share of judgeable orders (of customers who ordered a horizon before) after which the
    held and the continued criteria hold: what alerting at random orders would score."""
    held = continued = total = 0
    for customer, days in outcomes.order_days.items():
        for day in days:
            if day - days[0] < h or not outcomes.judgeable(day, h):
                continue
            ok, more, _ = judge_rise(outcomes, customer, day, h)
            if ok is None:
                continue
            total += 1
            held += ok
            continued += more
    return share(held, total), share(continued, total)


def _recall(found: list[tuple[str, float]], alerts: Sequence[tuple[str, float]]) -> float | None:
    by_customer: dict[str, list[float]] = {}
    for customer, day in alerts:
        by_customer.setdefault(customer, []).append(day)
    for days in by_customer.values():
        days.sort()
    hits = 0
    for customer, grid in found:
        days = by_customer.get(customer, [])
        i = bisect.bisect_right(days, grid)
        if i and days[i - 1] > grid - GRID_DAYS:
            hits += 1
    return share(hits, len(found))


def matched_rule(outcomes: Outcomes, moments: list[tuple[str, list[tuple[float, float]]]],
                 target: int, h: float) -> tuple[float, list[tuple[str, float]]]:
    """The rule's K (5% steps to 300%, then 25% steps to 2000%) whose judged alerts come
    closest to the target."""
    if target <= 0:
        return DEFAULT_RULE, []
    grid = [0.05 * i for i in range(1, 61)] + [3.0 + 0.25 * i for i in range(1, 69)]
    found = closest_volume(grid, lambda k: rule_alerts(moments, k),
                           lambda alerts: sum(1 for _, d in alerts if judgeable(outcomes, d, h)),
                           target, counts="fall")
    assert found is not None
    return found


@evaluator
class TrendEvaluator(Evaluator):
    """Judges heating-up alerts against "spend up K quarter on quarter"."""

    detector = "trend"

    def report(self, alerts: list[Alert], judging: Judging) -> dict[str, Any]:
        """Figures for heating-up alerts, the matched rule and the issue's 50% rule."""
        o, h = judging.outcomes, judging.horizon
        heating = [(a.finding.subject_id, alert_day(a)) for a in alerts
                   if a.finding.kind == "heating_up"]
        tally, continued = _tally(o, heating, h)
        found = rises(o, h)
        moments = rule_moments(o, h)
        k, base_alerts = matched_rule(o, moments, tally.alerts, h)
        base, base_continued = _tally(o, base_alerts, h)
        default_alerts = rule_alerts(moments, DEFAULT_RULE)
        default, default_continued = _tally(o, default_alerts, h)
        held_rate, continued_rate = base_rates(o, h)
        return {
            "judged_kind": "heating_up",
            "correct_if": f"spend in the horizon after > {1 + MARGIN:g} x the usual spend per "
                          "horizon before the rise (over up to a year before t - h)",
            "alerts": tally.alerts,
            "unjudged": tally.unjudged,
            "precision": tally.precision,
            "base_rate": held_rate,
            "recall": _recall(found, heating),
            "lasting_rises": len(found),
            "median_lead_days": tally.median_lead(),
            "alerts_per_1k_customers_per_week": round(
                len(heating) / judging.customer_weeks_per_1k, 3),
            "continued_precision": continued.precision,
            "continued_base_rate": continued_rate,
            "continued_correct_if": f"spend in the horizon after > {1 + MARGIN:g} x spend in "
                                    "the horizon just before the alert",
            "baseline": {"name": f"spend up {k:.0%} quarter on quarter" if tally.alerts
                         else "spend up K quarter on quarter: no judged alerts to match",
                         "alerts": base.alerts,
                         "unjudged": base.unjudged, "precision": base.precision,
                         "recall": _recall(found, base_alerts),
                         "median_lead_days": base.median_lead(),
                         "continued_precision": base_continued.precision},
            "kinds": {
                "interest": {"alerts": sum(1 for a in alerts if a.finding.kind == "interest"),
                             "judged": False},
                "rule_50_percent": {"name": "spend up 50% quarter on quarter (issue default)",
                                    **default.summary(),
                                    "recall": _recall(found, default_alerts),
                                    "continued_precision": default_continued.precision},
            },
        }
