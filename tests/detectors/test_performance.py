"""Performance by hand: the calendar, the pooled season and spread, a series' window, and
when a rep or a team dip fires, with which numbers.

Days are counted from T0 = 2024-01-01 00:00 UTC, a Monday: week w runs from day 7w to
day 7w + 7, and closes on the midnight tick of day 7(w + 1). Deals close on Tuesdays
at 10:00 (day 7w + 1 + 10/24).
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterable
from datetime import UTC, date, datetime
from statistics import NormalDist
from typing import Any

import pytest

from sia.detectors.performance import PerformanceDetector, PerformanceParams
from sia.detectors.performance_series import (
    Dispersion,
    RepBook,
    Season,
    Series,
    median,
    period_end,
    period_of,
    period_start,
    season_position,
)
from sia.engine.engine import Engine
from sia.events.models import Event, Interaction, Opportunity, Order, OrderLine, Rep
from sia.findings import Finding, Severity

from . import checks
from .builders import T0, at
from .streams import synthetic_stream

Z80 = NormalDist().inv_cdf(0.9)  # 1.281552: the 80% interval's lower bound


# -- the calendar ------------------------------------------------------------------------

def test_weeks_start_on_monday_utc() -> None:
    # T0 is day 19723 since the epoch; (19723 + 3) // 7 = 2818
    assert period_of(T0.timestamp(), "week") == 2818
    assert period_of(at(6.999).timestamp(), "week") == 2818  # Sunday 23:58
    assert period_of(at(7).timestamp(), "week") == 2819  # next Monday
    assert period_start(2818, "week") == date(2024, 1, 1)
    assert period_end(2818, "week") == datetime(2024, 1, 8, tzinfo=UTC)


def test_months_and_seasonal_positions() -> None:
    feb = datetime(2024, 2, 15, tzinfo=UTC).timestamp()
    assert period_of(feb, "month") == 2024 * 12 + 1
    assert period_start(2024 * 12 + 1, "month") == date(2024, 2, 1)
    assert period_end(2024 * 12 + 11, "month") == datetime(2025, 1, 1, tzinfo=UTC)
    # a week counts in the month of its Thursday: the week of Monday 2024-04-29 is in May
    may_week = period_of(datetime(2024, 4, 29, tzinfo=UTC).timestamp(), "week")
    assert season_position(may_week, "week", "quarter") == 1  # May: 2nd month of Q2
    assert season_position(may_week, "week", "year") == 4
    assert season_position(may_week, "week", "none") == 0
    assert season_position(2024 * 12 + 2, "month", "quarter") == 2  # March


# -- pooled season and spread --------------------------------------------------------------

def test_season_factor_moves_toward_actual_over_level() -> None:
    season = Season(3)
    # the prior 1.0 counts as one observation: rates max(0.3, 1/2), max(0.3, 1/3), 0.3
    season.learn(0, 1, actual=80.0, level=100.0, alpha=0.3)
    assert season.factor(0, 1) == pytest.approx(0.9)  # 1 + 0.5 (0.8 - 1)
    season.learn(0, 1, 80.0, 100.0, 0.3)
    assert season.factor(0, 1) == pytest.approx(0.9 - 0.1 / 3)  # 0.866667
    season.learn(0, 1, 80.0, 100.0, 0.3)
    assert season.factor(0, 1) == pytest.approx(0.866667 - 0.3 * 0.066667, abs=1e-6)
    season.learn(0, 1, 80.0, 0.0, 0.3)  # no level yet: nothing to learn
    assert season.counts[0][1] == 3 and season.factor(0, 0) == 1.0


def test_dispersion_is_pooled_mean_of_ratios() -> None:
    spread = Dispersion()
    spread.learn(0, [2.0, 4.0], alpha=0.1)  # mean 3, rate max(0.1, 1/2): 1 + 0.5 * 2
    assert spread.phi[0] == pytest.approx(2.0)
    spread.learn(0, [1.0], alpha=0.1)  # rate 1/3: 2 - (1/3)
    assert spread.phi[0] == pytest.approx(5 / 3)
    spread.learn(0, [], alpha=0.1)
    assert spread.counts[0] == 2 and spread.phi[1] == 1.0


def test_deal_sizes_give_compound_poisson_unit() -> None:
    book = RepBook()
    book.add_deal(1000.0, 0.05)  # rate 1: size 1000, square 1e6
    book.add_deal(3000.0, 0.05)  # rate 1/2: size 2000, square (1e6 + 9e6) / 2 = 5e6
    assert book.unit(0) == pytest.approx(2500.0)  # E[X^2] / E[X]
    assert book.unit(1) == book.unit(2) == 1.0  # counts: Poisson


def test_series_window_uses_the_level_before_it() -> None:
    series = Series()
    series.close(0.0, 1.0, 10, alpha=0.5, dispersion=2.0)  # not started: ignored
    assert series.periods == 0
    for index, value in enumerate((100.0, 300.0, 100.0, 300.0), start=11):
        series.close(value, 1.0, index, alpha=0.5, dispersion=2.0)
    # levels: 100 (rate 1), 100 + 0.5*200 = 200, 200 - 0.5*100 = 150, 150 + 0.5*150 = 225
    assert series.level == pytest.approx(225.0)
    assert series.periods == series.active == 4 and series.last == 14
    window = series.window(2)
    assert window is not None
    # periods 13 and 14 (100, 300) against the level before period 13 (200): 400 expected
    assert (window.actual, window.expected, window.below, window.start) == (400.0, 400.0, 1, 13)
    assert window.spread == pytest.approx(math.sqrt(2.0 * 400.0))  # 28.28
    assert window.share == 1.0
    assert series.window(2, warm=3) is None  # only 2 active periods before period 13
    assert series.window(5) is None
    clone = pickle.loads(pickle.dumps(series))
    assert clone.ring == series.ring and clone.level == series.level


def test_median() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5


# -- a rep's dip, end to end ---------------------------------------------------------------

HAND = {"season": "none", "periods_in_dip": 3, "level_alpha": 0.5, "min_active_periods": 4,
        "interval": 0.8, "min_drop": 0.5, "peer_ratio": 0.8, "min_peers": 2,
        "metrics": "revenue,deals"}
TEAM = ("A", "B", "C", "D")


def team_reps() -> list[Event]:
    """Reps A to D in team T, managed by M (a rep too)."""
    out: list[Event] = [Rep(event_id="rep-M", occurred_at=at(-7), rep_id="M", name="Mia",
                            team="T")]
    for rep in TEAM:
        out.append(Rep(event_id=f"rep-{rep}", occurred_at=at(-7), rep_id=rep,
                       name=f"Rep {rep}", team="T", manager_id="M"))
    return out


def deal(rep: str, week: int, k: int, stage: str = "won", amount: float = 500.0) -> Opportunity:
    """Deal k of a rep in week w, closed on Tuesday at 10:00."""
    return Opportunity(event_id=f"opp-{rep}-{week}-{k}-{stage}", occurred_at=at(7 * week + 1
                       + 10 / 24), opportunity_id=f"{rep}-{week}-{k}", customer_id=f"acct-{rep}",
                       rep_id=rep, stage=stage, amount=amount if stage == "won" else None)


def weeks_of_deals(weeks: int, quiet: dict[str, Iterable[int]]) -> list[Event]:
    """Every rep wins 2 deals of $500 a week; in their quiet weeks they lose 2 instead."""
    out: list[Event] = []
    for week in range(weeks):
        for rep in TEAM:
            stage = "lost" if week in set(quiet.get(rep, ())) else "won"
            out += [deal(rep, week, 1, stage), deal(rep, week, 2, stage)]
    return out


def run(detector: PerformanceDetector, events: list[Event], days: int) -> list[Finding]:
    """Tick at every midnight from day 0 to `days`, observing each day's events after it."""
    engine = Engine([detector])
    by_day: dict[int, list[Event]] = {}
    for event in events:
        day = math.floor((event.occurred_at - T0).total_seconds() / 86_400)
        by_day.setdefault(day, []).append(event)
    out: list[Finding] = []
    for event in by_day.pop(-7, []):
        out += engine.observe(event)
    for day in range(days + 1):
        out += engine.tick(at(day))
        for event in by_day.get(day, []):
            out += engine.observe(event)
    return out


# Weeks 0..9 every rep wins $1,000 (2 deals) a week: levels 1,000 and 2 exactly. The
# pooled spread learns from reps with 2 active weeks behind them, from week 2 on; all
# errors are 0, so phi halves every week (rate max(level_alpha 0.5, 1/(n+2)) = 0.5):
# phi = 0.5 after week 2, ..., 0.5^7 = 0.0078125 after week 8, i.e. before week 9.
# A loses both deals in weeks 10 and 11. At the close of week 11 (tick of day 84) A's
# window of 3 weeks is weeks 9, 10, 11: $1,000 against 3 x 1,000 = $3,000 from the level
# before week 9, a share of 1/3 <= 1 - min_drop; 2 of 3 weeks below forecast (k - 1).
# Revenue spread: phi 0.0078125 x unit (E[X^2]/E[X] = 500) = 3.90625 per dollar of
# forecast: sqrt(3.90625 x 3,000) = 108.2532; range 3,000 -+ 1.281552 x 108.2532.
# Deals: 2 against 6 (share 1/3), spread sqrt(0.0078125 x 6) = 0.216506.
# Peers B, C, D made 100% of plan over the same weeks; 1/3 <= 0.8 x 1.0: A's own dip.
PHI_BEFORE_WEEK_9 = 0.5 ** 7


def test_rep_dip_fires_after_two_of_three_weeks_with_hand_numbers() -> None:
    events = team_reps() + weeks_of_deals(12, {"A": (10, 11)})
    events.sort(key=lambda e: e.occurred_at)
    findings = run(PerformanceDetector(**HAND), events, days=84)
    assert len(findings) == 1
    f = findings[0]
    assert f.occurred_at == at(84)
    assert (f.kind, f.subject_kind, f.subject_id) == ("revenue_dip", "rep", "A")
    spread = math.sqrt(PHI_BEFORE_WEEK_9 * 500.0 * 3000.0)
    assert spread == pytest.approx(108.2532, abs=1e-4)
    facts = f.facts
    assert facts["actual"] == 1000.0 and facts["expected"] == 3000.0
    assert facts["low"] == pytest.approx(round(3000.0 - Z80 * spread, 2))  # 2861.27
    assert facts["high"] == pytest.approx(round(3000.0 + Z80 * spread, 2))  # 3138.73
    assert facts["share_of_plan"] == pytest.approx(0.3333)
    assert facts["peer_median_share"] == 1.0 and facts["peers"] == 3
    assert facts["also"] == {"deals": {"actual": 2.0, "expected": 6.0}}
    assert facts["from"] == "2024-03-04" and facts["to"] == "2024-03-25"  # weeks 9 to 11
    assert facts["manager_id"] == "M" and facts["notify"] == ["A", "M"]
    assert facts["lost_in_a_row"] == 4
    assert f.value == 2000.0  # $3,000 forecast - $1,000 won
    assert f.score == pytest.approx(0.6667)
    assert f.severity is Severity.MEDIUM  # a third of plan: not below (1 - 0.5) / 2
    assert f.evidence == ("opp-A-11-2-lost",)
    assert f.dedup_key == "performance:rep:A:revenue:2024-03-04"
    assert "Rep A won 1,000 against 3,000 expected (usual range 2,861 to 3,139): " \
           "33% of plan in the 3 weeks from 2024-03-04 to 2024-03-24" in f.explanation
    assert "below forecast in 2 of those 3 weeks" in f.explanation
    assert "Also won 2 deals against 6 expected" in f.explanation
    assert "the median rep of the T team made 100% of plan (3 reps)" in f.explanation
    assert "last 4 closed deals were all lost" in f.explanation
    assert "Mia should join the next key call" in f.action


def test_one_dip_one_finding_until_recovered() -> None:
    # A stays at zero for weeks 10..14: the dip is reported once (week 11), not again
    events = team_reps() + weeks_of_deals(15, {"A": range(10, 15)})
    events.sort(key=lambda e: e.occurred_at)
    findings = run(PerformanceDetector(**HAND), events, days=105)
    assert [(f.subject_id, f.occurred_at) for f in findings] == [("A", at(84))]


def test_one_bad_week_never_fires() -> None:
    # a single empty week costs a third of a 3-week window: less than min_drop (a half)
    events = team_reps() + weeks_of_deals(14, {"A": (10,)})
    events.sort(key=lambda e: e.occurred_at)
    assert run(PerformanceDetector(**HAND), events, days=98) == []


def test_silent_while_warming_up() -> None:
    # everyone active for only 3 weeks (min_active_periods 4), then nothing
    events = team_reps() + weeks_of_deals(3, {})
    assert run(PerformanceDetector(**HAND), events, days=70) == []


def test_whole_team_dip_is_a_team_finding_for_the_managers() -> None:
    # all four reps lose everything in weeks 10 and 11: no rep is worse than their peers
    # (each at 1/3 of plan, the peers' median 1/3), the team is: $4,000 against $12,000
    events = team_reps() + weeks_of_deals(12, {rep: (10, 11) for rep in TEAM})
    events.sort(key=lambda e: e.occurred_at)
    findings = run(PerformanceDetector(**HAND), events, days=84)
    assert [(f.subject_kind, f.subject_id, f.kind) for f in findings] == \
        [("team", "T", "revenue_dip")]
    f = findings[0]
    assert f.facts["actual"] == 4000.0 and f.facts["expected"] == 12000.0
    assert f.facts["notify"] == ["M"] and f.facts["reps"] == 4
    assert f.facts["peer_median_share"] is None  # no other team to compare with
    assert "Mia: review the T pipeline" in f.action
    assert f.dedup_key == "performance:team:T:revenue:2024-03-04"


def test_team_override_raises_the_bar() -> None:
    detector = PerformanceDetector(**HAND)
    detector.set_overrides({("team", "T"): {"min_drop": 0.9}})
    assert detector.params_for_team("T").min_drop == 0.9
    assert detector.params_for_team(None).min_drop == 0.5
    events = team_reps() + weeks_of_deals(12, {"A": (10, 11)})
    events.sort(key=lambda e: e.occurred_at)
    assert run(detector, events, days=84) == []  # a third of plan is not 90% below


def test_activities_and_orders_count_for_reps_without_a_pipeline() -> None:
    detector = PerformanceDetector()
    order = Order(event_id="o1", occurred_at=at(1), customer_id="c1", rep_id="R",
                  order_id="1", currency="EUR",
                  lines=[OrderLine(product_id="p", quantity=2, unit_price=50.0)])
    call = Interaction(event_id="i1", occurred_at=at(2), customer_id="c1", channel="call")
    engine = Engine([detector])
    engine.observe(order)
    engine.observe(call)  # no rep on the call: credited to the rep of the customer's order
    book = detector.rep_state("R")
    assert book is not None and book.totals() == (100.0, 1.0, 1.0)
    assert detector.customer_state("c1") == "R" and detector.customer_state("c2") is None
    # once the rep's opportunities are in the stream, wins count and orders do not
    engine.observe(Opportunity(event_id="w1", occurred_at=at(3), opportunity_id="x",
                               customer_id="c1", rep_id="R", stage="won", amount=70.0))
    assert book.totals() == (70.0, 1.0, 2.0)
    assert detector.currency == "EUR"


def test_bare_arithmetic_learns_what_the_engine_learns() -> None:
    events = team_reps() + weeks_of_deals(12, {"A": (10, 11)})
    events.sort(key=lambda e: e.occurred_at)
    engine_side = PerformanceDetector(**HAND)
    run(engine_side, events, days=84)
    bare = PerformanceDetector(**HAND)
    loop = bare.bare_arithmetic(events)
    assert loop is not None
    loop()
    # the bare loop closes periods only up to the last event's week (no clock after it)
    assert (bare.current, engine_side.current) == (2818 + 11, 2818 + 12)
    assert bare.reps["B"].series[0].level == engine_side.reps["B"].series[0].level == 1000.0


def test_params_are_validated_with_their_names() -> None:
    for bad in ({"period": "day"}, {"season": "weekly"}, {"metrics": "revenue,smiles"},
                {"interval": 0.3}, {"periods_in_dip": 0}, {"min_team_reps": 1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            PerformanceParams(**bad)
    assert PerformanceParams(metrics=" deals , revenue").metric_indexes() == [0, 1]


# -- the contract, run here too (the shared test picks the detector up once registered) ----

@pytest.mark.parametrize("check", checks.CHECKS, ids=lambda c: c.__name__)
def test_contract(check: Any) -> None:
    check(PerformanceDetector, synthetic_stream())


def test_planted_dips_of_the_synthetic_stream_are_found() -> None:
    """tests/detectors/extra/performance.py: performance-R2 is quiet from day 150 to 220,
    performance-R3 from day 280 to 336 (days after 2023-01-02)."""
    emitted = checks.run_all(PerformanceDetector, synthetic_stream())
    found = {(f.subject_id, f.occurred_at.date().isoformat()) for _, f in emitted}
    r2 = sorted(d for r, d in found if r == "performance-R2")
    r3 = sorted(d for r, d in found if r == "performance-R3")
    assert any("2023-06-01" <= d <= "2023-07-15" for d in r2), r2
    assert any("2023-10-09" <= d <= "2023-11-20" for d in r3), r3


# -- the evaluation's judge, by hand -------------------------------------------------------

def test_judge_and_matched_rule_by_hand() -> None:
    """Rep X wins $100 every Tuesday (days 1, 8, ...) until day 197, then nothing; rep Y
    wins $100 every Tuesday until day 400. Days after T0, in the judge's epoch days."""
    from sia.evaluation.judges import Judging
    from sia.evaluation.judges.performance import PerformanceEvaluator, rule_holds
    from sia.evaluation.outcomes import Outcomes
    from sia.policy import Alert

    judge = PerformanceEvaluator()
    for rep, last in (("X", 197), ("Y", 400)):
        for day in range(1, last + 1, 7):
            judge.see_event(deal(rep, 0, day, amount=100.0).model_copy(update={
                "occurred_at": at(day), "event_id": f"{rep}-{day}"}))
    revenue = judge.revenue()
    t0 = T0.timestamp() / 86_400
    assert revenue.between(["X"], t0 + 1, t0 + 15) == 200.0  # days 8 and 15: (start, end]
    # the 70% rule on Monday day 210: last 28 days (182, 210] hold days 183, 190, 197:
    # $300; the 91 days before, (91, 182], hold 13 Tuesdays: $1,300, a pace of
    # 1,300 x 28/91 = $400 per 28 days; 300 >= 0.7 x 400 = 280: quiet. Day 217: $200: fires
    assert not rule_holds(revenue, "X", t0 + 210, 0.7)
    assert rule_holds(revenue, "X", t0 + 217, 0.7)
    finding = Finding(detector="performance", kind="revenue_dip", subject_kind="rep",
                      subject_id="X", occurred_at=at(217), score=0.5,
                      severity=Severity.MEDIUM, title="t", explanation="x 1", action="a",
                      dedup_key="k", evidence=("X-197",))
    report = judge.report([Alert("a1", finding)], Judging(Outcomes(), 90.0, 1.0))
    # after (217, 307]: $0 < before (127, 217]: 10 Tuesdays, $1,000: correct; the rule
    # (70%) first holds on day 217 itself: lead 0
    assert (report["alerts"], report["precision"], report["median_lead_days"]) == (1, 1.0, 0.0)
    # dipping rep-quarters: X's Q3 ($300 against $1,300 in Q2) and Q4 ($0 against $300);
    # the alert on day 217 falls in Q3 (days 182 to 274), not within 28 days of Q4
    assert (report["dipping_rep_quarters"], report["recall"]) == (2, 0.5)
    # matched rule: at 5% it fires once, on day 231 (nothing in (203, 231] against a pace
    # of $400), correct ($0 after against $800 before), 14 days after the 70% rule knew
    base = report["baseline"]
    assert base["name"].endswith("below 5% of last quarter's pace")
    assert (base["alerts"], base["precision"], base["recall"], base["median_lead_days"]) == \
        (1, 1.0, 0.5, -14.0)
    assert report["kinds"]["team"]["alerts"] == 0


def test_planted_dips_change_only_the_chosen_reps_after_onset() -> None:
    from sia.evaluation.judges.performance import plant_dips

    events = team_reps() + weeks_of_deals(40, {})
    events.sort(key=lambda e: e.occurred_at)
    planted, onset = plant_dips(list(events), seed=3, reps=2, keep=0.0)
    assert planted == plant_dips(list(events), seed=3, reps=2, keep=0.0)[0]  # seeded
    assert len(onset) == 2 and len(planted) == len(events)
    for event in planted:
        if isinstance(event, Opportunity) and event.event_id.endswith("-planted"):
            day = (event.occurred_at - T0).total_seconds() / 86_400 + T0.timestamp() / 86_400
            assert event.rep_id in onset and day >= onset[event.rep_id]
            assert event.stage == "lost"
    lost = {e.rep_id for e in planted if isinstance(e, Opportunity) and e.stage == "lost"}
    assert lost == set(onset)
