"""Trend by hand: the decayed-sum arithmetic, the baseline snapshots, when a customer is
heating up, and when not.

Days are counted from T0 = 2024-01-01 00:00 UTC (day 19723 since the epoch). Most tests
use half-lives of 10 days (fast) and 100 days (slow) so that decay factors are powers of
two: an order 10 days old weighs 2^-1 in the fast sum and 2^-0.1 in the slow one.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Sequence
from typing import Any

import pytest

from sia.detectors.trend import TrendDetector, TrendParams, older_rate
from sia.detectors.trend_state import CustomerTrend, mean_age, monthly_rate
from sia.engine.engine import Engine
from sia.events.models import Event, Order, OrderLine
from sia.findings import Finding, Severity

from .builders import T0_DAY, at, customer, interaction, order

LN2 = math.log(2)
EASY: dict[str, Any] = {"fast_half_life_days": 10.0, "slow_half_life_days": 100.0,
                        "min_history_days": 20.0, "min_orders": 3}


def feed(engine: Engine, events: Sequence[Event]) -> list[Finding]:
    out: list[Finding] = []
    for event in events:
        out.extend(engine.observe(event))
    return out


def steady(who: str, last_day: int = 60, every: int = 10, amount: float = 100.0) -> list[Event]:
    """Orders of `amount` on days 0, every, 2 every, ... last_day."""
    return [order(who, d, amount) for d in range(0, last_day + 1, every)]


def test_monthly_rate_and_mean_age_by_hand() -> None:
    # one order of 300 read 10 days later at a half-life of 10: the sum is 150;
    # rate = 150 * ln 2 / 10 * 30 = 311.916 a month; over 10 days of history the weights
    # fill 1 - 2^-1 = 0.5 of a full window: 623.832 a month
    assert monthly_rate(150.0, 10.0, 10.0) == pytest.approx(150 * LN2 / 10 * 30 / 0.5)
    assert monthly_rate(150.0, 10.0, 10.0) == pytest.approx(623.832, abs=1e-3)
    # an order counted this very moment counts half: (150 - 100 / 2) ...
    assert monthly_rate(150.0, 10.0, 10.0, pending=100.0) == pytest.approx(
        100 * LN2 / 10 * 30 / 0.5)
    # mean age of weights 2^(-a/100) over 30 days: 1/l - 30 e^(-30 l) / (1 - e^(-30 l)),
    # l = ln 2 / 100: 144.2695 - 30 * 0.812252 / 0.187748 = 144.2695 - 129.7890 = 14.4805
    assert mean_age(100.0, 30.0) == pytest.approx(14.4805, abs=1e-4)
    # a long history: the mean age of exponential weights is H / ln 2
    assert mean_age(10.0, 10_000.0) == pytest.approx(10 / LN2)


def test_older_rate_ignores_a_fresh_burst() -> None:
    p = TrendParams(**EASY)
    # 8 events today: slow 8, fast 8: nothing beyond the fast sum, usual 0
    assert older_rate(8.0, 8.0, p, 200.0) == 0.0
    # mass of 2^(-a/100) - 2^(-a/10) over 200 days:
    # 100/ln2 (1 - 2^-2) - 10/ln2 (1 - 2^-20) = 108.2021 - 14.4269 = 93.7752 days
    mass = 100 / LN2 * 0.75 - 10 / LN2 * (1 - 2 ** -20)
    assert mass == pytest.approx(93.7752, abs=1e-4)
    assert older_rate(5.0, 2.0, p, 200.0) == pytest.approx(3.0 / mass * 30)


def test_baseline_snapshots_rotate_every_30_days() -> None:
    detector = TrendDetector(**EASY)
    feed(Engine([detector]), steady("A", 60))
    state = detector.customers["A"]
    # day 30: the first snapshot (taken at day 0, empty) becomes the baseline and the slow
    # sum before the day-30 order, 100 (2^-0.3 + 2^-0.2 + 2^-0.1)
    #   = 100 (0.812252 + 0.870551 + 0.933033) = 261.5836, is the next one;
    # day 60: that one becomes the baseline
    assert state.base_at - T0_DAY == pytest.approx(30.0)
    assert state.base_spend == pytest.approx(261.5836, abs=1e-4)
    assert state.next_at - T0_DAY == pytest.approx(60.0)
    # day 60, before its order: 261.5836 * 2^-0.3 + 100 (2^-0.2 + 2^-0.1) = 474.0555
    assert state.next_spend == pytest.approx(474.0555, abs=1e-4)
    assert state.orders == 7


def test_heating_up_fires_at_the_first_big_order_with_the_numbers() -> None:
    detector = TrendDetector(**EASY)
    engine = Engine([detector, ])
    feed(engine, [customer("A", name="Acme", owner=None)])
    assert feed(engine, steady("A", 60)) == []  # steady: recent 313.57 vs usual 289.72
    surge = order("A", 61, 400.0)
    findings = feed(engine, [surge])
    assert len(findings) == 1
    f = findings[0]
    # recent, fast sum at day 61: 100 * 2^-0.1 (1 + 1/2 + ... + 1/64) + 400
    #   = 100 * 0.933033 * 1.984375 + 400 = 585.1488; the order counted now weighs half:
    #   (585.1488 - 200) * ln2 / 10 * 30 / (1 - 2^-6.1) = 385.1488 * 2.079442 / 0.985425
    #   = 812.74 a month
    # usual, the baseline of day 30: 261.5836 * ln2 / 100 * 30 / (1 - 2^-0.3)
    #   = 261.5836 * 0.207944 / 0.187748 = 289.72 a month; ratio 2.805 >= 2
    assert f.facts["spend_recent_per_month"] == pytest.approx(812.74, abs=0.01)
    assert f.facts["spend_usual_per_month"] == pytest.approx(289.72, abs=0.01)
    assert f.facts["ratio"] == pytest.approx(2.805, abs=0.001)
    # orders lately: (2^-0.1 (1 + ... + 1/64) + 1 - 1/2) * 2.079442 / 0.985425 = 4.962 a month
    assert f.facts["orders_recent_per_month"] == pytest.approx(4.962, abs=0.001)
    # slope: (812.74 - 289.72) / lag; lag = 31 days since the baseline + its mean age
    # 14.4805 - the recent mean age 13.5245 = 31.9560 days = 1.06520 months: 491.0 a month
    assert f.facts["slope_per_month"] == pytest.approx(491.01, abs=0.01)
    assert f.kind == "heating_up" and f.subject_id == "A"
    assert f.score == pytest.approx(1 - 1 / 2.8053, abs=1e-4)
    assert f.value == pytest.approx(3 * (812.7430 - 289.7229), abs=0.01)  # a quarter more
    assert f.severity is Severity.LOW  # fewer than 20 checks: no population to compare
    assert f.evidence == (surge.event_id,)
    assert f.dedup_key == "trend:heating_up:A:2024-03-02"
    assert "Acme (A) is heating up: about £813 a month lately against £290 a month usually " \
        "(2.8 times), 5.0 orders a month against 3.7" in f.explanation
    assert "rising about £491 a month" in f.explanation
    assert "About £1,569 a quarter more than usual." in f.explanation
    # one alert per episode: the next big order says nothing
    assert feed(engine, [order("A", 62, 400.0)]) == []


def test_one_big_order_is_not_a_trend() -> None:
    detector = TrendDetector(**EASY)
    engine = Engine([detector])
    feed(engine, steady("B", 90, every=30))  # days 0, 30, 60, 90
    # day 105, a tenfold order: spend ratio far above 2, but orders lately:
    # (2^-1.5 + 2^-4.5 + 2^-7.5 + 2^-10.5 + 1 - 1/2) * 2.079442 / (1 - 2^-10.5)
    #   = (0.353553 + 0.044194 + 0.005524 + 0.000691 + 0.5) * 2.079442 / 0.999309 = 1.881
    # a month: below min_recent_orders 2, so no alert
    assert feed(engine, [order("B", 105, 1000.0)]) == []
    state = detector.customers["B"]
    r = detector.rates(state, detector.params, T0_DAY + 105, pending=1000.0, pending_orders=1)
    assert r.orders_recent == pytest.approx(1.881, abs=0.001)
    assert r.ratio > 2


def test_hysteresis_rearms_only_after_a_cool_down() -> None:
    detector = TrendDetector(**EASY)
    engine = Engine([detector])
    feed(engine, steady("A", 60))
    assert len(feed(engine, [order("A", 61, 400.0)])) == 1
    assert detector.customers["A"].hot_since == int(T0_DAY + 61)
    # back to 100 every 10 days: once recent < 1.1 x usual the episode closes
    quiet = feed(engine, [order("A", d, 100.0) for d in range(70, 201, 10)])
    assert quiet == []
    assert detector.customers["A"].hot_since == -1
    # a new surge is a new episode, with a new dedup key
    again = feed(engine, [order("A", 201, 400.0)])
    assert [f.dedup_key for f in again] == ["trend:heating_up:A:2024-07-20"]


def test_new_categories_lower_the_bar_to_breadth_ratio() -> None:
    def lines(day: float, cats: list[str], amount: float) -> Order:
        return Order(event_id=f"c-{day}", occurred_at=at(day), customer_id="C", order_id=f"{day}",
                     currency="GBP",
                     lines=[OrderLine(product_id=c, quantity=1.0, unit_price=amount / len(cats),
                                      category=c) for c in cats])

    params = {**EASY, "min_recent_orders": 1.0}
    events: list[Event] = [lines(d, ["paper"], 100.0) for d in range(0, 61, 10)]
    events.append(lines(61, ["paper", "toner", "chairs"], 150.0))
    # without new categories a spend ratio of (185.1488 + 150 - 75) * 2.079442 / 0.985425
    # / 289.72 = 548.97 / 289.72 = 1.895 is not enough (min_ratio 2) ...
    plain = TrendDetector(**params)
    flat: list[Event] = [lines(d, ["paper"], 100.0) for d in range(0, 61, 10)]
    flat.append(lines(61, ["paper"], 150.0))
    assert feed(Engine([plain]), flat) == []
    # ... with 2 categories new to the customer, breadth_ratio 1.3 is
    detector = TrendDetector(**params)
    findings = feed(Engine([detector]), events)
    assert len(findings) == 1
    assert findings[0].facts["new_categories"] == 2
    assert findings[0].facts["ratio"] == pytest.approx(1.895, abs=0.001)
    assert "2 categories new to them lately (latest: chairs)" in findings[0].explanation


def test_a_burst_of_quote_requests() -> None:
    detector = TrendDetector(**EASY, min_quotes=3.0, quote_ratio=3.0)
    engine = Engine([detector])
    feed(engine, steady("Q", 100))
    feed(engine, [interaction("Q", d, "web_visit") for d in (5, 35, 65, 95)])
    found = feed(engine, [interaction("Q", 101 + i / 2, "quote_request") for i in range(4)])
    assert [f.kind for f in found] == ["interest"]
    f = found[0]
    assert f.subject_id == "Q" and f.facts["quotes_recent_per_month"] >= 3.0
    assert f.facts["quotes_recent_per_month"] >= 3 * f.facts["quotes_usual_per_month"]
    # calls and emails are no interest signal
    assert feed(engine, [interaction("Q", 110, "call")]) == []


def test_silent_before_a_baseline_covers_min_history_days() -> None:
    detector = TrendDetector(**EASY)
    engine = Engine([detector])
    # a new customer buying a lot from the start has no "usual" to be compared with
    events = [order("N", d, 100.0 * (d + 1)) for d in range(0, 40, 2)]
    assert feed(engine, events) == []
    assert not detector.ready(detector.customers["N"], detector.params)


def test_state_is_a_few_floats() -> None:
    state = CustomerTrend(T0_DAY + 0.417)
    state.add_order(T0_DAY + 12.5, 1234.56, 30.0, 180.0)
    state.add_quote(T0_DAY + 13.25, 30.0, 180.0)
    state.add_categories(0b1011, T0_DAY + 12.5, True, 30.0)
    blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    assert len(blob) < 200
    clone = pickle.loads(blob)
    assert clone.__getstate__() == state.__getstate__()


def test_bare_arithmetic_learns_the_same_state() -> None:
    events = [*steady("A", 60), order("A", 61, 400.0), interaction("A", 62, "quote_request")]
    engine_fed = TrendDetector(**EASY)
    feed(Engine([engine_fed]), events)
    bare = TrendDetector(**EASY)
    loop = bare.bare_arithmetic(events)
    assert loop is not None
    loop()
    learned, fed = bare.customers["A"], engine_fed.customers["A"]
    detection = ("hot_since", "interest_since")  # what detection sets, not learning
    for name in CustomerTrend.__slots__:
        if name not in detection:
            assert getattr(learned, name) == getattr(fed, name), name


def test_params_ranges_name_the_field() -> None:
    cases: tuple[tuple[str, Any], ...] = (
        ("min_ratio", 1.0), ("rearm_ratio", 2.5), ("min_orders", 1), ("quote_ratio", 0.5),
        ("min_quotes", 0.0), ("breadth_ratio", 0.9))
    for key, value in cases:
        with pytest.raises(ValueError, match=key):
            TrendParams(**{key: value})
    with pytest.raises(ValueError, match="fast_half_life_days"):
        TrendParams(fast_half_life_days=200.0)
