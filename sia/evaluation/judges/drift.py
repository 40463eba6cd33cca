"""Drift: an overdue alert is right when the customer buys nothing within the horizon.

Baseline: "no order in N days", the usual CRM default, with N chosen so that it raises as
many judged alerts as the detector (one alert per silence, like the detector). Lead time
is the days from the alert to the moment the customer has been silent for the whole
horizon since their last order (when anyone would know). Erosion alerts are judged
apart: right when the customer spends less in the horizon after than in the one before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sia.evaluation.baselines import inactivity_alerts
from sia.evaluation.calibration import calibration
from sia.evaluation.evaluate import Judged, alert_day, closest_volume, last_order_before, share
from sia.evaluation.judges import Evaluator, Judging, evaluator
from sia.evaluation.outcomes import Outcomes
from sia.policy import Alert


def judge_overdue(outcomes: Outcomes, alerts: Sequence[tuple[str, float]],
                  horizon: float, stated: Sequence[float] | None = None
                  ) -> tuple[Judged, set[tuple[str, float]]]:
    """Judge (customer, day) churn alerts; also the churn episodes they caught. With
    `stated` (each alert's probability of no order within the horizon), the judged
    ones' (probability, right) pairs are kept in the tally's `stated`."""
    tally = Judged()
    caught: set[tuple[str, float]] = set()
    for i, (customer, day) in enumerate(alerts):
        nxt = outcomes.next_order_after(customer, day)
        correct = nxt is None or nxt > day + horizon
        last = last_order_before(outcomes, customer, day)
        lead = (last + horizon - day) if last is not None else None
        judgeable = outcomes.judgeable(day, horizon)
        tally.add(judgeable, correct, lead)
        if stated is not None and judgeable:
            tally.stated.append((stated[i], correct))
        if last is not None:
            caught.add((customer, last))
    return tally, caught



@evaluator
class DriftEvaluator(Evaluator):
    """Judges drift alerts against the inactivity rule."""

    detector = "drift"

    def report(self, alerts: list[Alert], judging: Judging) -> dict[str, Any]:
        """Figures for overdue alerts, with erosion under `kinds`."""
        return _drift(judging.outcomes, alerts, judging.horizon, judging.customer_weeks_per_1k,
                      precision_only=judging.precision_only)


def _drift(outcomes: Outcomes, alerts: list[Alert], h: float,
           per_week: float, *, precision_only: bool = False) -> dict[str, Any]:
    overdue_alerts = [a for a in alerts if a.finding.kind == "overdue"]
    overdue = [(a.finding.subject_id, alert_day(a)) for a in overdue_alerts]
    tally, caught = judge_overdue(outcomes, overdue, h,
                                  stated=[a.finding.score for a in overdue_alerts])
    if precision_only:  # the matched baseline is most of the cost: a search over 359 rules
        return {"judged_kind": "overdue", "alerts": tally.alerts, "unjudged": tally.unjudged,
                "precision": tally.precision}
    episodes = outcomes.churn_episodes(h)
    recall = share(sum(1 for e in episodes if e in caught), len(episodes))
    days, base, base_caught = _matched_inactivity(outcomes, tally.alerts, h)
    base_recall = share(sum(1 for e in episodes if e in base_caught), len(episodes))
    kinds: dict[str, Any] = {}
    erosion = Judged()
    for a in alerts:
        if a.finding.kind != "erosion":
            continue
        day = alert_day(a)
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
        "calibration": calibration(tally.stated),
        "baseline": {"name": f"no order in {days:.0f} days", "alerts": base.alerts,
                     "unjudged": base.unjudged, "precision": base.precision,
                     "recall": base_recall, "median_lead_days": base.median_lead()},
        "kinds": kinds,
    }


def _matched_inactivity(outcomes: Outcomes, target: int,
                        h: float) -> tuple[float, Judged, set[tuple[str, float]]]:
    """The inactivity rule whose judged alert count is closest to the target."""
    def run(days: float) -> tuple[Judged, set[tuple[str, float]]]:
        alerts = inactivity_alerts(outcomes, days)
        return judge_overdue(outcomes, [(c, d) for c, d, _ in alerts], h)

    found = closest_volume((float(d) for d in range(7, 366)), run, lambda r: r[0].alerts,
                           target, counts="fall")
    assert found is not None
    days, (tally, caught) = found
    return days, tally, caught


