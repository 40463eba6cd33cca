"""Performance: a dip alert is right when the rep's revenue stays down after it.

A rep alert raised on day t is correct when the rep's won revenue in the horizon after
it, (t, t + h], is below their won revenue in the horizon before it, (t - h, t]: the dip
did not bounce back within the horizon. The default horizon of 90 days is a quarter,
which is how sales is planned, and any 90-day window holds one first, second and third
month of a quarter, so the end-of-quarter push (strong in the CRM data: first months of
quarters close about 35% less) cancels out on both sides. Every alert is judged on
revenue, whichever metric dipped: activities and won deals matter because they lead
revenue. Team alerts are judged the same way on the team's revenue, under `kinds`.
Revenue is won opportunities for reps with opportunities in the stream, orders
otherwise (as the detector counts it). Alerts whose horizon before or after leaves the
data cannot be judged (`unjudged`).

Baseline, the rule a CRM ships with: "rep below 70% of last quarter", checked every
Monday: the rep's revenue in the last 28 days is below X times their pace of the 91
days before those (pro rata), for reps with that much history; one alert per episode
(it re-arms when the rep is back above). X is chosen so that it raises as many judged
alerts as the detector's rep alerts (matched volume).

Recall: the share of dipping rep-quarters (a calendar quarter whose revenue is below
70% of the rep's previous quarter, both inside the data) on which an alert about that
rep was raised during the quarter or in the 28 days before it.

Lead time (correct alerts): days from the alert to the first Monday on which the 70%
rule holds for the rep, looking from 28 days before the alert to the horizon after it;
negative when the rule already knew. Volume: `alerts_per_1k_customers_per_week` counts
rep alerts per 1,000 rep-weeks here (reps with revenue, weeks of revenue data).

Planted dips (`python -m sia.evaluation.judges.performance EVENTS`): real data may hold
no lasting dips at all (the CRM sample's reps only scatter around their own level), so
the module also measures detection where the truth is known: `reps` reps, drawn with a
seed, lose each won deal with probability 1 - keep (it becomes a lost one and its order
goes) from an onset drawn between 75 days after the first sale and a quarter before the
last, for good. An alert (raw rep finding, no policy) from the earliest possible onset on
is right when its rep is planted and past onset; recall is the share of planted reps
alerted after onset, delay the days from onset to that first alert. The 70% rule is
scored the same way at matched volume.
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sia.detectors.rhythm import DAY
from sia.evaluation.evaluate import Judged, alert_day, closest_volume, share
from sia.evaluation.judges import Evaluator, Judging, evaluator
from sia.events.models import Customer, Event, Opportunity, Order, Rep
from sia.policy import Alert

RECENT_DAYS = 28.0  # the rule's "recent" window
QUARTER_DAYS = 91.0  # its "last quarter"
RULE_SHARE = 0.7  # the default rule: below 70% of last quarter


class Revenue:
    """Won revenue per rep as a timeline with prefix sums, for window queries."""

    def __init__(self, sales: dict[str, list[tuple[float, float]]]) -> None:
        self.days: dict[str, list[float]] = {}
        self.cumulative: dict[str, list[float]] = {}
        for rep, rows in sales.items():
            rows.sort()
            self.days[rep] = [d for d, _ in rows]
            total, sums = 0.0, [0.0]
            for _, amount in rows:
                total += amount
                sums.append(total)
            self.cumulative[rep] = sums
        every = [d for days in self.days.values() for d in days]
        self.first_day = min(every) if every else 0.0
        self.last_day = max(every) if every else 0.0

    def between(self, reps: Iterable[str], start: float, end: float) -> float:
        """Revenue of the reps in (start, end]."""
        total = 0.0
        for rep in reps:
            days = self.days.get(rep)
            if not days:
                continue
            sums = self.cumulative[rep]
            total += sums[bisect.bisect_right(days, end)] - sums[bisect.bisect_right(days, start)]
        return total

    def first(self, rep: str) -> float | None:
        """Day of the rep's first sale."""
        days = self.days.get(rep)
        return days[0] if days else None

    def judgeable(self, day: float, horizon: float) -> bool:
        """Both horizons, before and after the day, are inside the data."""
        return day - horizon >= self.first_day and day + horizon <= self.last_day


def mondays(first: float, last: float) -> list[float]:
    """Day numbers of the Mondays (00:00 UTC) strictly after `first`, up to `last`."""
    day = math.floor(first) + 1
    day += (4 - day) % 7  # day 4 since the epoch is a Monday
    out = []
    while day <= last:
        out.append(float(day))
        day += 7
    return out


def rule_holds(revenue: Revenue, rep: str, day: float, share_of_pace: float) -> bool:
    """The rep's last 28 days are below `share_of_pace` of last quarter's pace."""
    first = revenue.first(rep)
    if first is None or day - RECENT_DAYS - QUARTER_DAYS < first:
        return False
    recent = revenue.between((rep,), day - RECENT_DAYS, day)
    before = revenue.between((rep,), day - RECENT_DAYS - QUARTER_DAYS, day - RECENT_DAYS)
    return before > 0 and recent < share_of_pace * before * RECENT_DAYS / QUARTER_DAYS


def rule_alerts(revenue: Revenue, checks: list[float],
                share_of_pace: float) -> list[tuple[str, float]]:
    """(rep, day) when the rule turns true, once per episode."""
    out = []
    for rep in revenue.days:
        armed = True
        for day in checks:
            holds = rule_holds(revenue, rep, day, share_of_pace)
            if holds and armed:
                out.append((rep, day))
            armed = not holds
    return out


@evaluator
class PerformanceEvaluator(Evaluator):
    """Judges rep and team dip alerts on revenue against the "70% of last quarter" rule."""

    detector = "performance"

    def __init__(self) -> None:
        self.won: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.ordered: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.pipeline: dict[str, None] = {}
        self.owner: dict[str, str] = {}
        self.team: dict[str, str] = {}

    def see_event(self, event: Event) -> None:
        """Revenue per rep, as the detector counts it, and who is in which team."""
        day = event.occurred_at.timestamp() / DAY
        if isinstance(event, Opportunity):
            self.pipeline[event.rep_id] = None
            if event.stage == "won":
                self.won[event.rep_id].append((day, event.amount or 0.0))
        elif isinstance(event, Order):
            rep = event.rep_id or self.owner.get(event.customer_id)
            if rep is not None:
                self.ordered[rep].append((day, event.amount))
        elif isinstance(event, Customer) and event.owner_rep_id:
            self.owner[event.customer_id] = event.owner_rep_id
        elif isinstance(event, Rep) and event.team:
            self.team[event.rep_id] = event.team

    def revenue(self) -> Revenue:
        """The timeline of every rep: wins for reps with a pipeline, orders otherwise."""
        reps = list(dict.fromkeys([*self.won, *self.ordered]))
        return Revenue({rep: list(self.won.get(rep, [])) if rep in self.pipeline
                        else list(self.ordered.get(rep, [])) for rep in reps})

    def report(self, alerts: list[Alert], judging: Judging) -> dict[str, Any]:
        """Figures for rep alerts, team alerts under `kinds`, and the matched rule."""
        return _performance(self.revenue(), self.team, alerts, judging.horizon)


def _judge(revenue: Revenue, alerts: list[tuple[str, float]], h: float,
           members: dict[str, list[str]] | None = None,
           checks: list[float] | None = None) -> Judged:
    """Judge (subject, day) alerts: revenue after below revenue before."""
    tally = Judged()
    for subject, day in alerts:
        reps = members.get(subject, []) if members is not None else [subject]
        after = revenue.between(reps, day, day + h)
        before = revenue.between(reps, day - h, day)
        lead = None
        if checks is not None:
            lead = next((d - day for d in checks if day - RECENT_DAYS <= d <= day + h
                         and rule_holds(revenue, subject, d, RULE_SHARE)), None)
        tally.add(revenue.judgeable(day, h), after < before, lead)
    return tally


def _recall(revenue: Revenue, alerts: list[tuple[str, float]]) -> tuple[float | None, int]:
    """Share of dipping rep-quarters with an alert in the quarter or 28 days before it."""
    quarters = _quarters(revenue.first_day, revenue.last_day)
    by_rep: dict[str, list[float]] = defaultdict(list)
    for rep, day in alerts:
        by_rep[rep].append(day)
    dips = hits = 0
    for rep in revenue.days:
        for (p_start, p_end), (q_start, q_end) in itertools.pairwise(quarters):
            before = revenue.between((rep,), p_start, p_end)
            if before <= 0 or revenue.between((rep,), q_start, q_end) >= RULE_SHARE * before:
                continue
            dips += 1
            hits += any(q_start - RECENT_DAYS <= d < q_end for d in by_rep.get(rep, ()))
    return share(hits, dips), dips


def _quarters(first: float, last: float) -> list[tuple[float, float]]:
    """(start, end] day bounds of the calendar quarters wholly inside the data."""
    start = datetime.fromtimestamp(first * DAY, UTC)
    year, q = start.year, (start.month - 1) // 3
    out: list[tuple[float, float]] = []
    while True:
        begin = datetime(year, 3 * q + 1, 1, tzinfo=UTC).timestamp() / DAY
        year2, q2 = (year + 1, 0) if q == 3 else (year, q + 1)
        end = datetime(year2, 3 * q2 + 1, 1, tzinfo=UTC).timestamp() / DAY
        if end - 1 > last:
            return out
        if begin >= first - 1:  # the first sale can fall on the quarter's first day
            out.append((begin - 1e-9, end - 1e-9))
        year, q = year2, q2


def _matched_rule(revenue: Revenue, checks: list[float], target: int,
                  h: float) -> tuple[float, list[tuple[str, float]], Judged]:
    """The rule's share X whose judged alert count is closest to the target."""
    def run(fraction: float) -> tuple[list[tuple[str, float]], Judged]:
        alerts = rule_alerts(revenue, checks, fraction)
        return alerts, _judge(revenue, alerts, h, checks=checks)

    found = closest_volume((p / 100 for p in range(5, 151)), run, lambda r: r[1].alerts,
                           target, counts="rise")
    assert found is not None
    fraction, (alerts, tally) = found
    return fraction, alerts, tally


def _performance(revenue: Revenue, teams: dict[str, str], alerts: list[Alert],
                 h: float) -> dict[str, Any]:
    checks = mondays(revenue.first_day, revenue.last_day)
    reps = [a for a in alerts if a.finding.subject_kind == "rep"]
    rep_alerts = [(a.finding.subject_id, alert_day(a)) for a in reps]
    tally = _judge(revenue, rep_alerts, h, checks=checks)
    recall, dips = _recall(revenue, rep_alerts)
    kinds: dict[str, Any] = {}
    for kind in dict.fromkeys(a.finding.kind for a in reps):
        judged = _judge(revenue, [(a.finding.subject_id, alert_day(a)) for a in reps
                                  if a.finding.kind == kind], h)
        kinds[kind] = judged.summary()
    members: dict[str, list[str]] = defaultdict(list)
    for rep, team in teams.items():
        members[team].append(rep)
    team_alerts = [(a.finding.subject_id, alert_day(a)) for a in alerts
                   if a.finding.subject_kind == "team"]
    kinds["team"] = {**_judge(revenue, team_alerts, h, members).summary(),
                     "correct_if": "team revenue in the horizon after < in the horizon before"}
    x, base_alerts, base = _matched_rule(revenue, checks, tally.alerts, h)
    rep_weeks = max(len(revenue.days), 1) * max((revenue.last_day - revenue.first_day) / 7, 1)
    return {
        "judged_kind": "rep dips (all metrics), judged on revenue",
        "alerts": tally.alerts,
        "unjudged": tally.unjudged,
        "precision": tally.precision,
        "recall": recall,
        "dipping_rep_quarters": dips,
        "median_lead_days": tally.median_lead(),
        "alerts_per_1k_customers_per_week": round(len(rep_alerts) / rep_weeks * 1000, 3),
        "volume_unit": "rep alerts per 1,000 rep-weeks",
        "baseline": {"name": f"revenue of the last 28 days below {x:.0%} of last quarter's pace",
                     "alerts": base.alerts, "unjudged": base.unjudged,
                     "precision": base.precision, "recall": _recall(revenue, base_alerts)[0],
                     "median_lead_days": base.median_lead()},
        "kinds": kinds,
    }


# -- planted dips ------------------------------------------------------------------------

def plant_dips(events: list[Event], seed: int, reps: int = 8,
               keep: float = 0.5) -> tuple[list[Event], dict[str, float]]:
    """The events with persistent dips planted in some reps' wins; (events, onset day)."""
    import random

    rng = random.Random(seed)
    won = [(e.rep_id, e.occurred_at.timestamp() / DAY) for e in events
           if isinstance(e, Opportunity) and e.stage == "won"]
    if not won:
        raise ValueError("no won opportunities in the events: nothing to plant dips in")
    sellers = sorted({rep for rep, _ in won})
    first, last = min(d for _, d in won), max(d for _, d in won)
    onset = {rep: rng.uniform(first + 75.0, last - QUARTER_DAYS)
             for rep in rng.sample(sellers, min(reps, len(sellers)))}
    out: list[Event] = []
    dropped: set[str] = set()
    for e in events:
        if isinstance(e, Opportunity) and e.stage == "won" and e.rep_id in onset \
                and e.occurred_at.timestamp() / DAY >= onset[e.rep_id] and rng.random() > keep:
            dropped.add(e.opportunity_id)
            out.append(e.model_copy(update={"stage": "lost", "amount": 0.0,
                                            "event_id": f"{e.event_id}-planted"}))
        elif not (isinstance(e, Order) and e.order_id in dropped):
            out.append(e)
    return out, onset


def _score_planted(alerts: list[tuple[str, float]], onset: dict[str, float],
                   start: float) -> tuple[int, int, dict[str, float]]:
    """(right, wrong, delay per planted rep caught) of alerts from `start` on."""
    right = wrong = 0
    delays: dict[str, float] = {}
    for rep, day in alerts:
        if day < start:
            continue
        if rep in onset and day >= onset[rep]:
            right += 1
            delays.setdefault(rep, day - onset[rep])
        else:
            wrong += 1
    return right, wrong, delays


def planted_report(events: list[Event], params: dict[str, Any], seeds: list[int],
                   reps: int = 8, keep: float = 0.5) -> dict[str, Any]:
    """Detector and matched 70%-style rule on planted dips, added up over the seeds."""
    from sia.detectors.performance import PerformanceDetector
    from sia.engine.engine import Engine, replay

    totals = {"detector": _Planted(), "baseline": _Planted()}
    shares = []
    for seed in seeds:
        planted, onset = plant_dips(events, seed, reps, keep)
        found = [(f.subject_id, f.occurred_at.timestamp() / DAY)
                 for f in replay(Engine([PerformanceDetector(**params)]), planted)
                 if f.subject_kind == "rep"]
        evaluator = PerformanceEvaluator()
        for event in planted:
            evaluator.see_event(event)
        revenue = evaluator.revenue()
        start = revenue.first_day + 75.0
        mine = _score_planted(found, onset, start)
        checks = mondays(revenue.first_day, revenue.last_day)
        def score(x: float, revenue: Revenue = revenue, checks: list[float] = checks,
                  onset: dict[str, float] = onset,
                  start: float = start) -> tuple[int, int, dict[str, float]]:
            return _score_planted(rule_alerts(revenue, checks, x), onset, start)

        matched = closest_volume((p / 100 for p in range(5, 151)), score,
                                 lambda theirs: theirs[0] + theirs[1], mine[0] + mine[1],
                                 counts="rise")
        assert matched is not None
        shares.append(matched[0])
        for name, (right, wrong, delays) in (("detector", mine), ("baseline", matched[1])):
            tally = totals[name]
            tally.right += right
            tally.wrong += wrong
            tally.delays += list(delays.values())
    dips = reps * len(seeds)
    return {"seeds": seeds, "planted_reps_per_seed": reps, "wins_kept": keep,
            "detector": totals["detector"].summary(dips),
            "baseline": {"name": "revenue of the last 28 days below X of last quarter's "
                                 f"pace, X from {min(shares):.0%} to {max(shares):.0%}",
                         **totals["baseline"].summary(dips)}}


@dataclass
class _Planted:
    """Tally of alerts on planted dips."""

    right: int = 0
    wrong: int = 0
    delays: list[float] = field(default_factory=list)  # per planted rep caught

    def summary(self, planted: int) -> dict[str, Any]:
        alerts = self.right + self.wrong
        return {"alerts": alerts, "precision": share(self.right, alerts),
                "recall": share(len(self.delays), planted),
                "median_delay_days": round(statistics.median(self.delays), 1)
                if self.delays else None}


def main(argv: list[str] | None = None) -> None:
    """python -m sia.evaluation.judges.performance EVENTS [--seeds N] [--first S] ..."""
    import argparse
    import json
    from pathlib import Path

    import yaml

    from sia.events.reader import Reject, read_events

    parser = argparse.ArgumentParser(description="performance detector on planted dips")
    parser.add_argument("events", type=Path)
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--first", type=int, default=100, help="first seed")
    parser.add_argument("--reps", type=int, default=8, help="planted reps per seed")
    parser.add_argument("--keep", type=float, default=0.5, help="share of wins kept")
    parser.add_argument("--set", action="append", default=[], help="key=value threshold")
    args = parser.parse_args(argv)
    params = {}
    for assignment in args.set:
        key, _, raw = assignment.partition("=")
        params[key] = yaml.safe_load(raw)
    events = [e for e in read_events(args.events) if not isinstance(e, Reject)]
    report = planted_report(events, params, list(range(args.first, args.first + args.seeds)),
                            args.reps, args.keep)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
