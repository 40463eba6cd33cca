"""Drift by hand: the rhythm arithmetic, when "overdue" is checked, erosion, engagement.

Days are counted from T0 = 2024-01-01 00:00 UTC (day 19723 since the epoch). Orders are
placed at 10:00, so on the midnight tick of day d a customer whose last order was on day
L has been silent d - L - 10/24 days.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import timedelta
from statistics import NormalDist
from typing import Any

import pytest

from sia.detectors.drift import DriftDetector, DriftParams
from sia.detectors.silence import CHECKPOINTS
from sia.engine.admission import TimeLimits
from sia.engine.engine import Engine
from sia.events.models import Event
from sia.findings import Finding, Severity

from . import checks
from .builders import at, customer, interaction, order, rep
from .streams import CHURNERS, DAYS, DISENGAGERS, ERODERS, N_CUSTOMERS, customer_id
from .streams import at_day as stream_day

PHI = NormalDist().cdf
LEARNED = {"min_resolved_orders": 0, "min_labels": 0}  # no warm-up of the silence model
HOUR10 = 10 / 24

# these hand-built streams pause for months or come out of order: the engine's time
# bounds (tests/hardening/test_engine_input.py) are not what they test
OUT_OF_ORDER = TimeLimits(max_gap=timedelta(days=3650), max_late=timedelta(days=3650))


def feed(engine: Engine, events: Iterable[Event]) -> list[Finding]:
    out: list[Finding] = []
    for event in events:
        out.extend(engine.observe(event))
    return out


def ticks(engine: Engine, days: Iterable[int]) -> list[tuple[int, Finding]]:
    """Tick at midnight of each day; (day, finding) for every finding."""
    return [(d, f) for d in days for f in engine.tick(at(d))]


def population_then(customer_orders: dict[str, list[float]], amount: float = 100.0
                    ) -> list[Event]:
    """P1 ordering every 5 days and P2 every 20 days (days 0..80), then the given orders.

    Their log gaps, ln 5 and ln 20, sit either side of ln 10: with a customer ordering
    every 10 days, the population prior of log gaps has mean ln 10 exactly.
    """
    events: list[Event] = [order("P1", 5 * i + HOUR10) for i in range(5)]
    events += [order("P2", 20 * i + HOUR10) for i in range(5)]
    for who, days in customer_orders.items():
        events += [order(who, d + HOUR10, amount) for d in days]
    events.sort(key=lambda e: e.occurred_at)
    return events


EVERY_10 = [100.0, 110.0, 120.0, 130.0, 140.0]  # 5 orders, 4 gaps of exactly 10 days

# The population prior of log gaps (river stats.Var, ddof=1) after P1, P2 and C:
#   4 x ln 5, 4 x ln 20, 4 x ln 10: mean ln 10, squared deviations 8 (ln 2)^2
#   var = 8 (ln 2)^2 / 11 = 0.349420
PRIOR_VAR = 8 * math.log(2) ** 2 / 11
# C's own gaps are all 10: EW mean ln 10, variance 0, over k = 4 gaps; with prior_weight 2
#   mu = (4 ln 10 + 2 ln 10) / 6 = ln 10          (typical gap: 10 days)
#   sigma^2 = (4 * 0 + 2 * 0.349420) / 6 = 0.116473, sigma = 0.341282
MU = math.log(10)
SIGMA = math.sqrt(2 * PRIOR_VAR / 6)


def test_hand_computed_rhythm_features() -> None:
    detector = DriftDetector()
    feed(Engine([detector]), population_then({"C": EVERY_10}))
    assert abs(PRIOR_VAR - 0.349420) < 1e-6 and abs(SIGMA - 0.341282) < 1e-6
    state = detector.customers["C"]
    f = detector.features(state, detector.params, 18.0)
    assert f["log_typical_gap"] == pytest.approx(MU, rel=1e-12)
    assert f["sigma"] == pytest.approx(SIGMA, rel=1e-9)
    # z = (ln 18 - ln 10) / 0.341282 = 0.587787 / 0.341282 = 1.722290
    assert f["z"] == pytest.approx(1.722290, abs=1e-6)
    assert f["log_silent"] == pytest.approx(math.log(18))
    assert f["log_gaps"] == pytest.approx(math.log(5))  # log1p(4 gaps)
    assert f["log_tenure"] == pytest.approx(math.log(41))  # log1p(40 days, first to last)
    # 30 * 5 orders / (40 tenure + 18 silent + 30) = 150 / 88
    assert f["orders_per_month"] == pytest.approx(150 / 88)
    assert f["silent_x_history"] == pytest.approx(math.log(18) * math.log(5))
    assert f["log_order_value"] == pytest.approx(math.log(101))


def test_hand_computed_lost_probability_of_the_rhythm_model() -> None:
    detector = DriftDetector()
    feed(Engine([detector]), population_then({"C": EVERY_10}))
    p = detector.params
    state = detector.customers["C"]
    # churn: no order resolved yet (no tick), q0 = (0 + 1) / (0 + 2) = 0.5, shrunk by the
    # customer's 4 gaps with churn_prior_weight 2: q = 0.5 * 2 / (2 + 4) = 1/6
    q = 0.5 * 2 / 6
    assert detector.churn_rate(state, p) == pytest.approx(q)

    def survival(days: float) -> float:
        own = 1 - PHI((math.log(days) - MU) / SIGMA)
        anyone = 1 - PHI((math.log(days) - MU) / math.sqrt(PRIOR_VAR))
        return (1 - p.pause_share) * own + p.pause_share * anyone

    for silent in (5.0, 18.0, 30.0, 90.0):
        expected = (q + (1 - q) * survival(silent + p.horizon_days)) / (
            q + (1 - q) * survival(silent))
        got = detector.lost_probability(state, p, silent)
        assert got == pytest.approx(expected, rel=1e-9), silent
    # by hand at 18 days: S(18) = 0.85 * 0.04251 + 0.15 * 0.16001 = 0.060136,
    # S(108) = 4.3e-6: P = 0.166670 / (0.166667 + 0.833333 * 0.060136) = 0.76885
    assert detector.lost_probability(state, p, 18.0) == pytest.approx(0.76885, abs=1e-5)


def test_prior_before_two_population_gaps_is_a_wide_month() -> None:
    detector = DriftDetector()
    feed(Engine([detector]), [order("A", 0), order("A", 12)])
    state = detector.customers["A"]
    f = detector.features(state, detector.params, 5.0)
    # one gap of 12 days, prior (ln 30, var 1) with weight 2:
    #   mu = (ln 12 + 2 ln 30) / 3, sigma^2 = (0 + 2 * 1) / 3
    assert f["log_typical_gap"] == pytest.approx((math.log(12) + 2 * math.log(30)) / 3)
    assert f["sigma"] == pytest.approx(math.sqrt(2 / 3))


def stub_silence(detector: DriftDetector, probability: Callable[[float], float]) -> None:
    """Replace the learned silence model's answer by a known function of silent days."""
    detector.silence.predict = (  # type: ignore[method-assign]
        lambda features, cell: probability(math.exp(features["log_silent"])))


def silent_over_50(days: float) -> float:
    """P(lost) = silent days / 50, at most 0.99: crosses 0.8 at 40 days, 0.6 at 30."""
    return min(days / 50, 0.99)


def test_overdue_is_checked_at_silence_checkpoints_and_fires_once() -> None:
    detector = DriftDetector(**LEARNED)  # lost_probability 0.8, min_overdue_days 21
    engine = Engine([detector])
    stub_silence(detector, silent_over_50)
    feed(engine, population_then({"C": EVERY_10}))
    assert CHECKPOINTS[:5] == (14.0, 21.0, 30.0, 45.0, 60.0)
    # last order day 140 10:00. Checkpoints from min_overdue_days: 21, 30, 45 days.
    #   due 161.42 -> tick day 162, silent 21.58, P = 0.43 < 0.8: look again at 30 days
    #   due 170.42 -> tick day 171, silent 30.58, P = 0.61 < 0.8: look again at 45 days
    #   due 185.42 -> tick day 186, silent 45.58, P = 0.91 >= 0.8: fire
    fired = [(d, f) for d, f in ticks(engine, range(141, 300)) if f.subject_id == "C"]
    assert [d for d, _ in fired] == [186]
    (_, finding) = fired[0]
    last = detector.customers["C"].last_order_id
    assert finding.kind == "overdue"
    assert finding.dedup_key == f"drift:overdue:C:{last}"
    assert finding.evidence == (last,)
    assert finding.occurred_at == at(186)
    assert finding.score == pytest.approx((45 + 14 / 24) / 50, abs=1e-4)
    assert finding.title == "customer C: no order for 46 days (usually every 10)"
    # quarterly spend: value 100 x 5 orders x 91 / max(40 days of tenure, 91) = 500
    assert finding.value == pytest.approx(500.0)
    assert finding.explanation.startswith(
        "customer C orders every 10 days (usually 7 to 14, over 5 orders); last order 46 "
        "days ago on 2024-05-20.")
    assert "no order in the next 90 days at 91%" in finding.explanation
    assert finding.explanation.endswith("About £500 a quarter at risk.")
    assert finding.facts["typical_gap_days"] == pytest.approx(10.0)
    assert finding.facts["days_since_last_order"] == pytest.approx(45.6)
    assert finding.severity is Severity.LOW  # fewer than 20 orders seen: no percentiles yet


def test_min_overdue_days_and_warm_up_hold_the_finding_back() -> None:
    later = DriftDetector(**LEARNED, min_overdue_days=50.0)
    engine = Engine([later])
    stub_silence(later, silent_over_50)
    feed(engine, population_then({"C": EVERY_10}))
    # first checkpoint at or after 50 days is 60: due 200.42, tick day 201
    assert [d for d, f in ticks(engine, range(141, 300)) if f.subject_id == "C"] == [201]

    cold = DriftDetector()  # min_resolved_orders=500, min_labels=2000: model not trusted yet
    engine = Engine([cold])
    stub_silence(cold, lambda days: 0.99)
    feed(engine, population_then({"C": EVERY_10}))
    assert ticks(engine, range(141, 400)) == []


def test_ordering_again_rearms_and_ordering_in_time_prevents_it() -> None:
    detector = DriftDetector(**LEARNED)
    engine = Engine([detector])
    stub_silence(detector, silent_over_50)
    feed(engine, population_then({"C": EVERY_10, "D": EVERY_10}))
    # D orders on day 170, before its 45-day check: the day-186 check is stale
    engine_ticks = ticks(engine, range(141, 170))
    new_d = order("D", 170 + HOUR10)
    engine.observe(new_d)
    fired = engine_ticks + ticks(engine, range(170, 190))
    assert [(d, f.subject_id) for d, f in fired if f.subject_id in ("C", "D")] == [(186, "C")]
    # C orders again on day 190: a new silence, a new finding with the new order's key
    new_c = order("C", 190 + HOUR10)
    engine.observe(new_c)
    later = [(d, f) for d, f in ticks(engine, range(190, 300)) if f.subject_id in ("C", "D")]
    # D: 170.42 + 45 = 215.42 -> day 216; C: 190.42 + 45 = 235.42 -> day 236
    assert [(d, f.subject_id, f.dedup_key) for d, f in later] == [
        (216, "D", f"drift:overdue:D:{new_d.event_id}"),
        (236, "C", f"drift:overdue:C:{new_c.event_id}")]


def test_team_override_fires_earlier_than_an_identical_customer() -> None:
    detector = DriftDetector(**LEARNED)
    detector.set_overrides({("team", "T"): {"lost_probability": 0.6}})
    engine = Engine([detector])
    stub_silence(detector, silent_over_50)
    feed(engine, [rep("R1", "T"), rep("R2", "Other"),
                  customer("CT", owner="R1", name="Team Shop"),
                  customer("CD", owner="R2", name="Default Shop")])
    feed(engine, population_then({"CT": EVERY_10, "CD": EVERY_10}))
    assert detector.params_for(engine, "CT").lost_probability == 0.6
    assert detector.params_for(engine, "CD").lost_probability == 0.8
    fired = {f.subject_id: d for d, f in ticks(engine, range(141, 300))
             if f.subject_id in ("CT", "CD")}
    # team T: P = 30.58 / 50 = 0.61 >= 0.6 at the 30-day check (day 171);
    # default: 0.61 < 0.8, fires at the 45-day check (day 186)
    assert fired == {"CT": 171, "CD": 186}


def ew(values: Iterable[float], alpha: float) -> list[float]:
    """Exponentially weighted means, starting at the first value (computed independently)."""
    out: list[float] = []
    for v in values:
        out.append(v if not out else out[-1] + alpha * (v - out[-1]))
    return out


def test_erosion_by_hand_with_hysteresis() -> None:
    # baseline_orders 20, recent_orders 5: long alpha 2/21, short alpha 2/6
    values = [100.0] * 8 + [30.0] * 6 + [150.0] * 6 + [30.0] * 6
    long, short = ew(values, 2 / 21), ew(values, 2 / 6)
    ratio = [s / lg for s, lg in zip(short, long, strict=True)]
    # order 12 (index 11) is the first at or below 1 - value_drop = 0.6:
    #   long 100 -> 93.3333 -> 87.3016 -> 81.8443 -> 76.9067
    #   short 100 -> 76.6667 -> 61.1111 -> 50.7407 -> 43.8272; ratio 0.5699
    assert [round(r, 4) for r in ratio[8:12]] == [0.8214, 0.7, 0.62, 0.5699]
    assert long[11] == pytest.approx(76.9067, abs=1e-4)
    assert short[11] == pytest.approx(43.8272, abs=1e-4)
    detector = DriftDetector()
    engine = Engine([detector])
    fired = {}
    for i, v in enumerate(values):
        for f in engine.observe(order("E", 7 * i + HOUR10, v)):
            fired[i + 1] = f
    # order 15 (150) lifts the ratio to 0.97 > 0.8: re-armed; order 25 drops it to 0.588
    assert ratio[14] > 0.8 and ratio[23] > 0.6 >= ratio[24]
    assert sorted(fired) == [12, 25]
    first = fired[12]
    assert first.kind == "erosion" and first.subject_id == "E"
    assert first.score == pytest.approx(1 - ratio[11], abs=1e-4)
    assert first.title == "customer E is buying less: orders 43% smaller than usual"
    # lost a quarter: (76.9067 - 43.8272) x 12 orders x 91 / max(77 days, 91) = 396.95
    assert first.value == pytest.approx((long[11] - short[11]) * 12, abs=0.01)
    assert first.explanation == (
        "customer E still orders (12 orders so far), but their last 5 orders average "
        "£43.83, 43% below their usual £76.91. About £397 a quarter less than usual.")
    assert first.dedup_key == f"drift:erosion:E:{first.evidence[0]}"
    assert "41% below" in fired[25].explanation


def test_erosion_stays_quiet_until_a_real_recovery() -> None:
    # 8 x 100 then 4 x 30 (fires at order 12), then 70, 70 (ratio 0.689, 0.772: no longer
    # eroded, but not above 1 - 0.4/2 = 0.8), then 10, 10 (eroded again): no second finding
    values = [100.0] * 8 + [30.0] * 4 + [70.0, 70.0, 10.0, 10.0]
    long, short = ew(values, 2 / 21), ew(values, 2 / 6)
    ratio = [s / lg for s, lg in zip(short, long, strict=True)]
    assert 0.6 < ratio[12] < ratio[13] <= 0.8 and ratio[15] <= 0.6
    engine = Engine([DriftDetector()])
    fired = [i + 1 for i, v in enumerate(values)
             for _ in engine.observe(order("E", 7 * i + HOUR10, v))]
    assert fired == [12]


def test_breadth_erosion_by_hand() -> None:
    # 8 orders of 3 products then orders of 1 product, same value: breadth EW
    #   long 3 -> 2.8095 -> 2.6372 -> 2.4813 -> 2.3402
    #   short 3 -> 2.3333 -> 1.8889 -> 1.5926 -> 1.3951; ratio 0.5961 <= 0.6 at order 12
    engine = Engine([DriftDetector()])
    fired = []
    for i in range(14):
        products = ("A", "B", "C") if i < 8 else ("A",)
        for f in engine.observe(order("W", 7 * i + HOUR10, 90.0, products)):
            fired.append((i + 1, f))
    assert [n for n, _ in fired] == [12]
    finding = fired[0][1]
    assert finding.title == "customer W is buying less: 40% fewer products an order"
    assert "they now buy 1.4 products an order against 2.3 before (40% fewer)" in (
        finding.explanation)
    assert finding.facts["breadth_recent"] == pytest.approx(1.40, abs=0.01)
    assert finding.value == 0.0  # the value did not drop


def test_engagement_by_hand() -> None:
    # calls on days 0, 10, ..., 50; then silence; tickets on days 190, 195, 200.
    # Decayed contact counts on day 50 (fast half-life 30, slow 180):
    #   fast = sum 0.5 ** ((50 - t) / 30) = 3.635492, slow = sum 0.5 ** ((50 - t)/180) = 5.461102
    calls = range(0, 51, 10)
    fast50 = sum(0.5 ** ((50 - t) / 30) for t in calls)
    slow50 = sum(0.5 ** ((50 - t) / 180) for t in calls)
    assert (fast50, slow50) == pytest.approx((3.635492, 5.461102), abs=1e-6)
    # complaints (fast half-life): 1 on day 190; 1 + 0.5 ** (5/30) = 1.890899 on day 195
    # (< min_complaints 2: quiet); 1 + 1.890899 * 0.5 ** (5/30) = 2.684599 on day 200
    complaints = 1 + (1 + 0.5 ** (5 / 30)) * 0.5 ** (5 / 30)
    assert complaints == pytest.approx(2.684599, abs=1e-6)
    # on day 200, 150 days after the last call:
    #   fast = 3.635492 * 0.5 ** 5 = 0.113609, slow = 5.461102 * 0.5 ** (150/180) = 3.064940
    #   (>= min_interactions 3)
    #   rates a month: fast * ln 2 / 30 * 30 = 0.078748, slow * ln 2 / 180 * 30 = 0.354076
    #   0.078748 <= (1 - 0.5) * 0.354076: fire, drop = 1 - 0.078748 / 0.354076 = 0.7776
    fast_rate = fast50 * 0.5**5 * math.log(2)
    slow_rate = slow50 * 0.5 ** (150 / 180) * math.log(2) / 6
    assert (fast_rate, slow_rate) == pytest.approx((0.078748, 0.354076), abs=1e-6)
    detector = DriftDetector()
    engine = Engine([detector], time_limits=OUT_OF_ORDER)  # 140 days with no event
    assert feed(engine, [interaction("G", t, "call", 0.4) for t in calls]) == []
    assert engine.observe(interaction("G", 190, "ticket")) == []
    assert engine.observe(interaction("G", 195, "email", sentiment=-0.5)) == []
    (finding,) = engine.observe(interaction("G", 200, "ticket"))
    assert finding.kind == "engagement"
    assert finding.score == pytest.approx(1 - fast_rate / slow_rate, abs=1e-4)
    assert finding.score == pytest.approx(0.7776, abs=1e-4)
    assert finding.severity is Severity.MEDIUM  # 2.68 complaints < 2 x min_complaints
    assert finding.title == "customer G is disengaging: contact down 78%, complaints rising"
    assert finding.explanation == (
        "customer G had about 0.1 calls, emails or meetings a month lately against 0.4 "
        "usually (78% fewer), while 2.7 recent complaints, tickets or returns piled up "
        "(latest 2024-07-19).")
    assert finding.facts["complaints_recent"] == pytest.approx(2.68, abs=0.005)
    # the key buckets 30-day periods since the epoch: (19723 + 200) // 30 = 664
    assert finding.dedup_key == "drift:engagement:G:664"


def test_friendly_contact_or_too_few_complaints_stay_quiet() -> None:
    engine = Engine([DriftDetector()])
    feed(engine, [interaction("H", t, "call") for t in range(0, 51, 10)])
    # a positive email is no complaint; two tickets a month apart decay below 2
    assert engine.observe(interaction("H", 190, "email", sentiment=0.5)) == []
    assert engine.observe(interaction("H", 200, "ticket")) == []
    assert engine.observe(interaction("H", 230, "ticket")) == []  # 1 + 0.5 = 1.5 < 2
    # still in touch: contact rate has not dropped, so complaints alone do not fire
    engine = Engine([DriftDetector()])
    feed(engine, [interaction("K", t, "call") for t in range(0, 201, 10)])
    assert feed(engine, [interaction("K", t, "ticket") for t in (201, 202, 203)]) == []


def test_params_ranges_name_the_field() -> None:
    cases: tuple[tuple[str, Any], ...] = (
        ("lost_probability", 1.0), ("lost_probability", 0.4), ("horizon_days", 3.0),
        ("min_orders", 0), ("value_drop", 1.0), ("gap_alpha", 0.0), ("pause_share", 1.0))
    for key, value in cases:
        with pytest.raises(ValueError, match=key):
            DriftParams(**{key: value})
    with pytest.raises(ValueError, match="baseline_orders must exceed recent_orders"):
        DriftParams(baseline_orders=5, recent_orders=5)
    with pytest.raises(ValueError, match="fast_half_life_days"):
        DriftParams(fast_half_life_days=200.0)


def test_synthetic_stream_stories(stream: tuple[Event, ...]) -> None:
    """With the learned silence model: churners are flagged, steady customers are not."""
    # only the base stream's customers have stories; extra modules bring their own
    base = {customer_id(i) for i in range(N_CUSTOMERS)}
    emitted = [f for _, f in checks.run_all(DriftDetector, stream) if f.subject_id in base]
    end = stream_day(DAYS)
    by_kind: dict[str, set[str]] = {}
    for f in emitted:
        if f.kind != "overdue" or f.occurred_at < end:  # after the end everyone is silent
            by_kind.setdefault(f.kind, set()).add(f.subject_id)
    assert by_kind["overdue"] == {customer_id(i) for i in CHURNERS}
    assert by_kind["engagement"] == {customer_id(i) for i in DISENGAGERS}
    assert {customer_id(i) for i in ERODERS} <= by_kind["erosion"]
    assert len(by_kind["erosion"]) <= len(ERODERS) + 2


def test_a_late_older_order_does_not_cancel_the_overdue_check() -> None:
    detector = DriftDetector(**LEARNED)
    engine = Engine([detector])
    stub_silence(detector, silent_over_50)
    feed(engine, [order("C", d + HOUR10) for d in (0, 10, 20, 30, 40)])
    engine.observe(order("C", 15 + HOUR10))  # backfilled: older than the last order
    assert detector.customers["C"].last_order_at == pytest.approx(
        detector.customers["C"].first_order_at + 40)
    # as without the late order: 45-day check due 85.42, tick day 86, P = 0.91 >= 0.8
    fired = [d for d, f in ticks(engine, range(41, 200)) if f.subject_id == "C"]
    assert fired == [86]
