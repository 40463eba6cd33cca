"""Margin by hand: usual levels, runs, significance, causes, recovery, hysteresis, periods.

Days are counted from T0 = 2024-01-01 00:00 UTC. Customer orders are placed at 10:00
every 10 days. The catalogue product W has list price 100 and cost 60, so with 10 units
a line:

    10% off: price 90, revenue 900, profit 300, margin 1/3 = 33.3%
    30% off: price 70, revenue 700, profit 100, margin 1/7 = 14.3%

The usual level is a revenue-weighted EW mean: EW sums of revenue R and profit P with
weight a = max(2 / (baseline_span + 1), 1 / n) for the n-th observation (so the first
observations are a plain running mean), level = P / R.
"""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sia.detectors.margin import PRODUCT, MarginDetector, MarginParams
from sia.detectors.margin_state import MarginState, Thresholds
from sia.engine.engine import Engine
from sia.engine.population import Outbox
from sia.events.models import Event, Order, OrderLine, Product
from sia.findings import Finding, Severity

from . import checks
from .builders import T0_DAY, at, customer, rep

HOUR10 = 10 / 24
W = Product(event_id="prd-W", occurred_at=at(-30), product_id="W", name="widget",
            list_price=100.0, unit_cost=60.0)


def buy(who: str, day: float, price: float, *, product: str = "W", quantity: float = 10.0,
        list_price: float | None = None, cost: float | None = None) -> Order:
    """One order of one line, at 10:00 on `day`; event id "<who>-<day>"."""
    return Order(event_id=f"{who}-{day:g}", occurred_at=at(day + HOUR10), customer_id=who,
                 order_id=f"SO-{who}-{day:g}", currency="GBP",
                 lines=[OrderLine(product_id=product, quantity=quantity, unit_price=price,
                                  list_price=list_price, unit_cost=cost)])


def feed(engine: Engine, events: Iterable[Event]) -> list[Finding]:
    out: list[Finding] = []
    for event in events:
        out.extend(engine.observe(event))
    return out


def only_customers(**kw: object) -> MarginDetector:
    return MarginDetector(subjects="customer", **kw)


# -- the usual level -------------------------------------------------------------------


def test_usual_level_is_revenue_weighted_running_mean_then_ew() -> None:
    t = MarginParams(baseline_span=16).thresholds()
    assert t.alpha == pytest.approx(2 / 17)
    state = MarginState()
    # (R, P): (100, 30), (200, 40), (100, 10); weights 1, 1/2, 1/3:
    #   R: 100 -> 150 -> 150 + (100 - 150)/3 = 133.33; P: 30 -> 35 -> 35 + (10 - 35)/3 = 26.67
    #   level = 26.67 / 133.33 = 0.2 = (30 + 40 + 10) / (100 + 200 + 100): the pooled margin
    for rev, profit in ((100.0, 30.0), (200.0, 40.0), (100.0, 10.0)):
        state.fold(rev, profit, 0.0, 0.0, rev - profit, 0.0, "e", t)
    assert state.rev == pytest.approx(400 / 3)
    assert state.profit == pytest.approx(80 / 3)
    assert state.level() == pytest.approx(0.2)
    # from the 9th observation on, 1/n < 2/17 and the weight stays at 2/17
    for _ in range(5):
        state.fold(100.0, 20.0, 0.0, 0.0, 80.0, 0.0, "e", t)
    assert state.n == 8
    before = state.rev
    state.fold(300.0, 0.0, 0.0, 0.0, 300.0, 0.0, "e", t)
    assert state.rev == pytest.approx(before + 2 / 17 * (300.0 - before))


def test_variance_of_levels_and_significance_by_hand() -> None:
    detector = only_customers()
    engine = Engine([detector])
    feed(engine, [W] + [buy("A", 10 * k, 90.0) for k in range(4)])
    state = detector.customers["A"]
    assert state.level() == pytest.approx(1 / 3) and state.var == 0.0
    # the 5th order at 30% off: margin 1/7, a = 1/5, diff = 1/7 - 1/3 = -4/21
    #   var = (1 - 1/5)(0 + (1/5)(4/21)^2) = 0.8 * 0.2 * 0.0362812 = 0.0058050
    #   R = 900 + (700 - 900)/5 = 860, P = 300 + (100 - 300)/5 = 260, level 0.302326
    assert feed(engine, [buy("A", 40, 70.0)]) == []
    assert state.var == pytest.approx(0.8 * 0.2 * (4 / 21) ** 2)
    assert state.level() == pytest.approx(260 / 860)
    assert state.run is not None and state.run[0] == 1 and state.run[5] == pytest.approx(1 / 3)


# -- a discount creep, end to end --------------------------------------------------------


def creep() -> tuple[MarginDetector, Engine, list[Finding]]:
    detector = only_customers()
    engine = Engine([detector])
    events: list[Event] = [W, rep("R9", "North"), customer("A", owner="R9", name="Acme")]
    events += [buy("A", 10 * k, 90.0) for k in range(4)]  # days 0..30: 10% off
    events += [buy("A", 10 * k, 70.0) for k in range(4, 7)]  # days 40..60: 30% off
    return detector, engine, feed(engine, events)


def test_discount_creep_opens_on_the_third_low_order() -> None:
    # min_history 4: orders 1-4 make the usual level (1/3, var 0); orders 5, 6, 7 are each
    # more than 5 points below the level the run started from (1/3), so the run is 3 long
    # at order 7 (day 60). By hand (see the variance test for order 5):
    #   order 6: base 0.302326, diff -0.159468, a 1/6: var = (5/6)(0.0058050 + 0.0042383)
    #            = 0.0083695; R 833.33, P 233.33 (level 0.28)
    #   order 7: base 0.28, diff -0.137143, a 1/7: var = (6/7)(0.0083695 + 0.0026869)
    #            = 0.0094769, sd 0.097349; R 814.29, P 214.29
    #   run: 3 orders, R 2100, P 300, pooled margin 1/7; drop = 1/3 - 1/7 = 4/21 = 0.190476
    #   z = 0.190476 * sqrt(3) / 0.097349 = 3.389 >= 2: significant
    detector, _, found = creep()
    assert len(found) == 1
    f = found[0]
    assert f.kind == "discount_creep" and f.subject_kind == "customer" and f.subject_id == "A"
    assert f.occurred_at == at(60 + HOUR10)
    state = detector.customers["A"]
    assert state.var == pytest.approx(0.0094769, abs=1e-7)
    assert f.facts["usual"] == pytest.approx(0.3333, abs=1e-4)
    assert f.facts["recent"] == pytest.approx(0.1429, abs=1e-4)
    assert f.facts["drop"] == pytest.approx(0.1905, abs=1e-4)
    assert f.facts["discount_usual"] == pytest.approx(0.1) and f.facts["observations"] == 3
    assert f.facts["discount_recent"] == pytest.approx(0.3)
    # cost / list: (1 - 1/3)(1 - 0.1) = 0.6 before, (1 - 1/7)(1 - 0.3) = 0.6 in the run, and the
    # same product at its usual cost (k = 1): at the run's 30% and the old cost share the
    # margin would be 1 - 0.6/0.7 = 1/7: all of the drop is discount.
    # Money: drop x usual revenue per order (R = 814.29) x orders a quarter (7 orders over
    # 60 days, counted as 91: 7) = 0.190476 * 814.2857 * 7 = 1085.71
    assert f.value == pytest.approx(1085.71, abs=0.01)
    assert f.explanation == (
        "Margin on Acme (A)'s orders fell to 14.3% over their last 3 orders (since "
        "2024-02-10) from 33.3% usually; average discount rose from 10% to 30% (discount "
        "creep). About £1,086 of margin lost a quarter.")
    assert "Rep R9" in f.action and "10% discount" in f.action and "(now 30%)" in f.action
    assert f.title == "Acme (A): margin down to 14.3% from 33.3% (discount creep)"
    assert f.severity is Severity.MEDIUM  # drop 0.19: at least 2 x min_drop, under 4 x
    assert f.score == pytest.approx(round(0.190476 / 0.3, 4))
    assert f.dedup_key == "margin:customer:A:A-40"  # the run's first order
    assert f.evidence == ("A-40", "A-60")


def test_hysteresis_then_recovery_resolves_the_opening_alert() -> None:
    detector, engine, _ = creep()
    # still low: the alert is open, nothing more is said
    assert feed(engine, [buy("A", 70, 70.0), buy("A", 80, 70.0)]) == []
    # back to 10% off: margin 1/3 >= recover_at = 1/3 - 0.025; the 3rd such order recovers
    back = feed(engine, [buy("A", d, 90.0) for d in (90, 100, 110)])
    assert [f.kind for f in back] == ["recovered"]
    f = back[0]
    assert f.occurred_at == at(110 + HOUR10)
    assert f.dedup_key == "margin:customer:A:A-40:recovered"
    assert f.facts["resolves"] == "margin:customer:A:A-40"
    assert f.score == 0.05 and f.severity is Severity.LOW and f.value == 0.0
    assert f.evidence == ("A-40", "A-110")  # the opening order and the one that recovers
    assert f.explanation == ("Margin on Acme (A)'s orders is back to 33.3% over their last 3 "
                             "orders, against 14.3% when SIA raised the alert on 2024-03-01 "
                             "and 33.3% before.")
    assert detector.customers["A"].opened is None


def test_a_new_normal_rearms_silently_and_a_further_drop_alerts_again() -> None:
    detector, engine, _ = creep()
    state = detector.customers["A"]
    # Low orders keep coming. The usual level sinks toward 1/7; the alert closes silently
    # once it is within min_drop / 2 of the level at the alert: 1/7 + 0.025 = 0.167857.
    # Re-derived here: EW sums with a = max(2/17, 1/n) from n = 8 on.
    rev, profit, n = 814.2857142857143, 214.28571428571428, 7
    closes_at = None
    for k in range(7, 60):
        n += 1
        a = max(2 / 17, 1 / n)
        rev, profit = rev + a * (700 - rev), profit + a * (100 - profit)
        if profit / rev <= 1 / 7 + 0.025:
            closes_at = k
            break
    assert closes_at is not None
    for k in range(7, closes_at + 1):
        assert feed(engine, [buy("A", 10 * k, 70.0)]) == []
        assert (state.opened is None) == (k == closes_at), k
    # from the new normal (about 16.8%), 50% off (margin -20%) is a new drop, a new key
    later = [buy("A", 10 * k, 50.0) for k in range(closes_at + 1, closes_at + 4)]
    found = feed(engine, later)
    assert len(found) == 1 and found[0].dedup_key == f"margin:customer:A:{later[0].event_id}"
    assert found[0].severity is Severity.HIGH  # below the 0% floor


def test_silent_while_warming_up() -> None:
    detector = only_customers()
    engine = Engine([detector])
    # 3 orders of history (min_history 4): the 4th order is learned, not judged, and the
    # run starts with the 5th; a 30% discount on orders 4-6 stays silent
    found = feed(engine, [W] + [buy("A", 10 * k, 90.0) for k in range(3)]
                 + [buy("A", 10 * k, 70.0) for k in range(3, 6)])
    assert found == []
    assert detector.customers["A"].run is not None  # orders 5 and 6 started a run


def test_a_volatile_customer_needs_a_longer_run() -> None:
    # Margins alternate 20% (price 75) and 40% (price 100) over 8 orders: usual level
    # (15 + 40) x 4 / ((75 + 100) x 10 x 4 / 10) = 220 / 700 = 11/35 = 31.43%, sd about
    # 0.1. Then orders at 80 (margin 25%): each is 6.4 points below 11/35 (low), the
    # pooled drop is 11/35 - 1/4 = 9/140 = 0.0643. With the EW sd of levels at each step,
    #   run 3 (order 11): z = 0.0643 * sqrt(3) / 0.0878 = 1.27
    #   run 5 (order 13): z = 0.0643 * sqrt(5) / 0.0798 = 1.80
    #   run 6 (order 14): z = 0.0643 * sqrt(6) / 0.0758 = 2.08 >= 2: it fires
    # while without the significance test (min_z 0) the 3rd low order is enough.
    prices = [75.0, 100.0] * 4 + [80.0] * 6
    events: list[Event] = [W] + [buy("A", 10 * k, p) for k, p in enumerate(prices)]
    for min_z, fires_on in ((2.0, 13), (0.0, 10)):
        engine = Engine([only_customers(min_z=min_z)])
        engine.observe(W)
        when = [k for k, e in enumerate(events[1:]) if engine.observe(e)]
        assert when == [fires_on], min_z
    detector = only_customers()
    found = feed(Engine([detector]), events)
    assert found[0].facts["usual"] == pytest.approx(0.3143, abs=1e-4)
    assert found[0].facts["drop"] == pytest.approx(0.0643, abs=1e-4)
    assert found[0].facts["observations"] == 6
    assert found[0].severity is Severity.LOW  # under 2 x min_drop


# -- causes ------------------------------------------------------------------------------


def test_cost_increase_not_passed_on() -> None:
    # The lines carry their cost: 60, then 75 from the 5th order, at 10% off list 100.
    # Margin 1/3 then (90 - 75)/90 = 1/6. The product's usual cost share of list is 0.6
    # (EW weight 0.1 per line), so the run's cost at usual costs is
    #   line 5: 1000 x 0.6 = 600, then ratio 0.6 + 0.1 (0.75 - 0.6) = 0.615
    #   line 6: 615, ratio 0.6285; line 7: 628.5;  X = 1843.5, actual 2250: k = 1.220504
    # Split of the drop 1/3 -> 1/6: discount 0 (10% both), mix: m_d = 1/3 and
    #   m_mix = 1 - 0.75 / k / 0.9 = 0.317222: mix 0.016111, cost 0.150556: cost wins.
    detector = only_customers()
    engine = Engine([detector])
    events = [buy("B", 10 * k, 90.0, list_price=100.0, cost=60.0 if k < 4 else 75.0)
              for k in range(7)]
    found = feed(engine, events)
    assert len(found) == 1
    f = found[0]
    assert f.kind == "cost_increase" and f.occurred_at == at(60 + HOUR10)
    assert f.facts["recent"] == pytest.approx(0.1667, abs=1e-4)
    assert "cost takes 22% more of the list price than usual" in f.explanation
    assert "average discount at 10% against 10%" in f.explanation
    assert f.action.startswith("Pass the cost increase on: ask the account owner to requote")


def test_product_mix_is_not_a_cost_increase() -> None:
    # Two products with fixed costs: W (cost 60% of list) and L (cost 90% of list), both at
    # 10% off. The customer switches from W to L: margin 1/3 -> 1 - 0.9/0.9 = 0. Each
    # product costs what it usually does (k = 1), so the drop is mix, not cost.
    detector = only_customers()
    engine = Engine([detector])
    events = [buy("M", 10 * k, 90.0, list_price=100.0, cost=60.0) for k in range(4)]
    events += [buy("L-warm", -5.0, 90.0, product="L", list_price=100.0, cost=90.0)]
    events += [buy("M", 10 * k, 90.0, product="L", list_price=100.0, cost=90.0)
               for k in range(4, 7)]
    events.sort(key=lambda e: e.occurred_at)
    found = feed(engine, events)
    assert [f.kind for f in found] == ["product_mix"]
    assert "mix moved to lower-margin products" in found[0].explanation
    assert "(their cost is 90% of list price against 60% usually)" in found[0].explanation


def test_below_the_floor_without_a_big_drop() -> None:
    # Margin 3% (price 100, cost 97), then price 96: margin (96 - 97)/96 = -1.04%. Each low
    # order is only 4 points down (under min_drop 5) but below the 0% floor, while the
    # usual level was above it: a "below_floor" drop, high severity.
    detector = only_customers()
    engine = Engine([detector])
    events = [buy("F", 10 * k, 100.0 if k < 4 else 96.0, list_price=100.0, cost=97.0)
              for k in range(7)]
    found = feed(engine, events)
    assert [f.kind for f in found] == ["below_floor"]
    f = found[0]
    assert f.severity is Severity.HIGH and f.score == 0.5
    assert f.title == "customer F: margin down to -1.0% from 3.0% (below the 0% floor)"
    assert "under the 0% margin floor" in f.action


def test_price_realisation_when_no_cost_is_known() -> None:
    # Catalogue list price 50, no cost anywhere: 4 units at 47.5 (5% off), then at 35
    # (30% off): price realisation 95% then 70%, drop 25 points.
    detector = only_customers()
    engine = Engine([detector])
    g = Product(event_id="prd-G", occurred_at=at(-30), product_id="G", name="gadget",
                list_price=50.0)
    events = [g] + [buy("R", 10 * k, 47.5 if k < 4 else 35.0, product="G", quantity=4.0)
                    for k in range(7)]
    found = feed(engine, events)
    assert [f.kind for f in found] == ["price_realisation"]
    f = found[0]
    assert f.explanation.startswith(
        "customer R paid 30% below list price over their last 3 orders (since 2024-02-10), "
        "against 5% below "
        "usually (price realisation 70% against 95%).")
    # 0.25 x usual reference value per order x 7 orders a quarter; the reference value
    # EW is 200 (4 units x 50) throughout: 0.25 * 200 * 7 = 350
    assert f.value == pytest.approx(350.0)
    assert f.explanation.endswith("About £350 a quarter given away in price.")


def test_usual_price_is_a_frugal_median_and_odd_prices_are_left_out() -> None:
    detector = only_customers()
    engine = Engine([detector])
    # no list price: the product's usual price starts at the first price, then moves 2% at
    # most a line toward each new price: 10, 10 (stays), 12 -> 10.2, 9 -> 10.2 * 0.98 = 9.996
    feed(engine, [buy("U", 0, 10.0, product="Q"), buy("U", 1, 10.0, product="Q"),
                  buy("U", 2, 12.0, product="Q"), buy("U", 3, 9.0, product="Q")])
    assert detector.products["Q"].usual == pytest.approx(9.996)
    assert detector.products["Q"].anchor == 10.0
    # realisation of the customer's orders is measured against the usual price before the
    # line: order 2 at 10 against 10, order 3 at 12 against 10, order 4 at 9 against 10.2
    state = detector.customers["U"]
    assert state.n == 4
    # EW sums with weights 1, 1/2, 1/3, 1/4 are running means: paid (100+100+120+90)/4,
    # reference (0 + 100 + 100 + 102)/4 (the first line had no usual price yet)
    assert state.paid / state.ref == pytest.approx(310 / 302)
    # a price over twice the usual one is another offer: not a reference for realisation
    before = (state.ref, state.paid)
    feed(engine, [buy("U", 4, 25.0, product="Q")])
    assert state.ref == pytest.approx(before[0] * 4 / 5)  # EW toward 0: nothing added
    assert state.paid == pytest.approx(before[1] * 4 / 5)


# -- reps and products: periods, from the clock --------------------------------------------


def test_rep_periods_close_from_the_clock() -> None:
    # Rep R7 owns C1 and C2. Periods of 14 days start at the first order of the period
    # and are learned at the first midnight tick at or after their end.
    detector = MarginDetector(subjects="rep")
    engine = Engine([detector])
    feed(engine, [W, rep("R7", "South"), customer("C1", owner="R7"),
                  customer("C2", owner="R7")])
    found: list[Finding] = []
    for period in range(7):
        price = 90.0 if period < 4 else 70.0
        start = 14 * period
        feed(engine, [buy("C1", start + 1, price), buy("C2", start + 5, price)])
        for d in range(start + 2, start + 16):
            found += engine.tick(at(d))
    found += engine.tick(at(100))
    state = detector.reps["R7"]
    assert state.n == 7
    # period k runs from day 14k + 1 + 10h to 14k + 15 + 10h: learned on the tick of day
    # 14k + 16; the 7th (k = 6) on day 100 -- the 3rd low period opens the drop
    assert [f.kind for f in found] == ["discount_creep"]
    f = found[0]
    assert f.subject_kind == "rep" and f.subject_id == "R7" and f.occurred_at == at(100)
    assert f.facts["since"] == "2024-02-27"  # start of period 4: day 57
    # a period is known by its latest order: the first low period's and the last one's
    assert f.evidence == ("C2-61", "C2-89")
    assert f.dedup_key == "margin:rep:R7:C2-61"
    assert f.explanation.startswith("Margin on the orders booked by Rep R7 fell to 14.3% over "
                                    "3 periods of 14 days with sales since 2024-02-27")
    assert detector.customers["C1"].n == 7  # customers are still learned, not reported


def test_product_subject_and_its_own_price_without_list() -> None:
    # Product Z sells at 2.00 (no list, no cost), then at 1.50 from period 5 on: against
    # its first price (the anchor, 2.00) realisation is 100% then 75%.
    detector = MarginDetector(subjects="product")
    engine = Engine([detector])
    found: list[Finding] = []
    for period in range(7):
        price = 2.0 if period < 4 else 1.5
        feed(engine, [buy("P1", 14 * period + 1, price, product="Z", quantity=100.0)])
        for d in range(14 * period + 2, 14 * period + 16):
            found += engine.tick(at(d))
    found += engine.tick(at(100))
    assert [f.kind for f in found] == ["price_realisation"]
    f = found[0]
    assert f.subject_kind == "product" and f.subject_id == "Z"
    assert f.title == "product Z: selling 25% below its usual price"
    assert f.explanation.startswith("product Z sold at £1.50 a unit on average over 3 periods "
                                    "of 14 days with sales since")
    assert "against £2.00 usually (25% lower)" in f.explanation
    # back at 2.00 for 3 periods: recovered, said in prices (no list price to speak of)
    back: list[Finding] = []
    for period in range(7, 10):
        feed(engine, [buy("P1", 14 * period + 1, 2.0, product="Z", quantity=100.0)])
        for d in range(14 * period + 2, 14 * period + 16):
            back += engine.tick(at(d))
    back += engine.tick(at(142))
    assert [r.kind for r in back] == ["recovered"]
    assert back[0].title == "product Z: price back to £2.00 (alert of 2024-04-10 can be closed)"
    assert back[0].explanation == (
        "product Z sells at £2.00 a unit again over 3 periods of 14 days with sales, against "
        "£1.50 when SIA raised the alert on 2024-04-10 and £2.00 before.")


# -- partitions sharing population models ------------------------------------------------


SIDE = {"A1": 0, "A2": 0, "B1": 1, "B2": 1}  # customer -> partition


def rep_stream() -> list[Event]:
    """Rep R7 owns four customers, two in each partition; each buys W weekly, on its own
    weekday (B1 first, on day 0), at 10% off until day 56, then at 30% off, to day 112."""
    events: list[Event] = [buy(who, day, 90.0 if day < 56 else 70.0)
                           for who, first in (("B1", 0), ("A1", 1), ("A2", 3), ("B2", 5))
                           for day in range(first, 112, 7)]
    return sorted(events, key=lambda e: e.occurred_at)


def json_trip(update: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(json.loads(json.dumps(update)))


def run_partitions(share: bool) -> tuple[list[MarginDetector], list[list[Finding]]]:
    """Two partitions as sia/engine/population.py runs them: each learns its customers'
    orders (and its own updates) at once, and with `share` the other's updates, through
    JSON, at the next midnight before its tick."""
    parts = [MarginDetector(), MarginDetector()]
    outboxes = [Outbox(), Outbox()]
    if share:
        for part, outbox in zip(parts, outboxes, strict=True):
            part.population_outbox = outbox
    engines = [Engine([part]) for part in parts]
    for side, engine in enumerate(engines):
        feed(engine, [W, rep("R7", "South")] + [customer(c, owner="R7")
                                                 for c, s in SIDE.items() if s == side])
    found: list[list[Finding]] = [[], []]
    stream = rep_stream()
    for day in range(120):
        for event in stream:
            if int(event.day - T0_DAY) == day:
                side = SIDE[event.customer_id]
                found[side] += engines[side].observe(event)
        made = [[json_trip(update) for *_, update in outbox] for outbox in outboxes]
        for side, engine in enumerate(engines):
            for update in made[1 - side]:
                parts[side].learn_population(update)
            outboxes[side].clear()
            found[side] += engine.tick(at(day + 1))
    return parts, found


def periodic(found: Iterable[Finding]) -> list[tuple[str, str, str]]:
    return [(f.subject_kind, f.subject_id, f.kind) for f in found
            if f.subject_kind != "customer"]


def test_sharing_partitions_learn_reps_and_products_from_everyone_and_one_speaks() -> None:
    whole = MarginDetector()
    engine = Engine([whole])
    feed(engine, [W, rep("R7", "South")] + [customer(c, owner="R7") for c in SIDE])
    expected: list[Finding] = []
    stream = rep_stream()
    for day in range(120):
        expected += feed(engine, [e for e in stream if int(e.day - T0_DAY) == day])
        expected += engine.tick(at(day + 1))
    assert sorted(periodic(expected)) == [("product", "W", "discount_creep"),
                                          ("rep", "R7", "discount_creep")]
    # alone, each partition learns R7 and W from its own two customers, and both raise
    # the same drops: duplicates (with different dedup keys, so nothing merges them)
    _, alone = run_partitions(share=False)
    assert periodic(alone[0]) and sorted(periodic(alone[0])) == sorted(periodic(alone[1]))
    # sharing, both learn R7 and W from all four customers, the other's orders a day late
    parts, found = run_partitions(share=True)
    for part in parts:
        assert part.reps["R7"].n == whole.reps["R7"].n
        assert part.reps["R7"].level() == pytest.approx(whole.reps["R7"].level(), abs=0.01)
        assert part.products["W"].n == whole.products["W"].n
        assert set(part.customers) == {c for c, s in SIDE.items() if s == parts.index(part)}
    # and only the partition of their first customer (B1, day 0) speaks about them
    assert periodic(found[0]) == []
    assert sorted(periodic(found[1])) == sorted(periodic(expected))
    assert [f.occurred_at for f in found[1] if f.subject_kind == "rep"] == [
        f.occurred_at for f in expected if f.subject_kind == "rep"]
    # customers are still each partition's own
    assert sorted(f.subject_id for side in found for f in side
                  if f.subject_kind == "customer") == sorted(
        f.subject_id for f in expected if f.subject_kind == "customer")


def test_the_owner_is_the_first_sale_whatever_order_updates_arrive_in() -> None:
    # two instances learn the same three orders of product Z in different orders; both
    # name its first sale (day 3, then the least customer id) the owner, and only the
    # instance that holds that customer speaks about Z
    orders = [(5.0, "K"), (3.0, "M"), (3.0, "L")]
    first = MarginDetector(subjects="product")
    second = MarginDetector(subjects="product")
    for detector, sequence in ((first, orders), (second, orders[::-1])):
        for day, who in sequence:
            detector.learn_population(
                json_trip((T0_DAY + day, f"{who}-{day}", who, None,
                           [("Z", 1.0, 2.0, None, None)])))
    assert first._product_owner["Z"] == second._product_owner["Z"] == (T0_DAY + 3.0, "L")
    first.customers["L"] = MarginState()  # L's orders are learned by the first only
    assert first.speaks(PRODUCT, "Z") and not second.speaks(PRODUCT, "Z")


# -- thresholds, state, benchmark arithmetic -------------------------------------------------


def test_params_ranges() -> None:
    with pytest.raises(ValueError, match="subjects"):
        MarginDetector(subjects="customers,reps")
    with pytest.raises(ValueError, match="recover_within"):
        MarginDetector(min_drop=0.02, recover_within=0.03)
    with pytest.raises(ValueError, match="min_drop"):
        MarginDetector(min_drop=0.0)
    assert MarginDetector(subjects="rep, product").params.subjects == "rep, product"


def test_state_is_small_and_round_trips() -> None:
    detector, _, _ = creep()
    state = detector.customers["A"]
    blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    assert len(blob) < 200  # open alert included
    clone = pickle.loads(blob)
    assert pickle.dumps(clone, protocol=pickle.HIGHEST_PROTOCOL) == blob
    assert clone.opened.event_id == "A-40" and clone.opened.recover_at == pytest.approx(
        1 / 3 - 0.025)


def test_state_pickled_before_sharing_restores() -> None:
    detector, _, _ = creep()
    state = dict(detector.__dict__)
    for added in ("_listed", "_costed", "_rep_owner", "_product_owner", "_sums"):
        del state[added]
    old = MarginDetector.__new__(MarginDetector)
    old.__setstate__(state)
    assert old._listed and old._costed  # W's catalogue record
    assert feed(Engine([old]), [buy("A", 70, 70.0)]) == []  # learns on, still open
    assert old.customers["A"].n == 8


def test_bare_arithmetic_learns_what_observe_learns() -> None:
    events: list[Event] = [W] + [buy("A", 10 * k, 90.0 if k < 4 else 70.0) for k in range(9)]
    observed = MarginDetector()
    feed(Engine([observed]), events)
    bare = MarginDetector()
    loop = bare.bare_arithmetic(events)
    assert loop is not None
    loop()
    assert pickle.dumps(bare.customers) == pickle.dumps(observed.customers)
    assert bare.products["W"].usual == observed.products["W"].usual


def test_contract_stream_tells_the_three_stories() -> None:
    from .streams import synthetic_stream

    found = [f for _, f in checks.run_all(MarginDetector, synthetic_stream())]
    kinds = {(f.subject_id, f.kind) for f in found}
    assert ("margin-C1", "discount_creep") in kinds
    assert ("margin-C2", "cost_increase") in kinds
    assert ("margin-C3", "price_realisation") in kinds
    assert ("margin-C1", "recovered") in kinds


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 200.0), st.floats(1.0, 50.0),
                          st.one_of(st.none(), st.floats(0.0, 150.0))),
                min_size=1, max_size=40))
def test_any_prices_give_well_formed_findings(orders: list[tuple[float, float, float | None]]
                                              ) -> None:
    detector = MarginDetector(min_history=2, sustain=1, min_z=0.0)
    engine = Engine([detector])
    found: list[Finding] = []
    for k, (price, quantity, cost) in enumerate(orders):
        found += engine.observe(buy("H", 3 * k, price, quantity=quantity, list_price=120.0,
                                    cost=cost))
        found += engine.tick(at(3 * k + 1))
    for f in found:
        assert 0.0 <= f.score <= 1.0 and f.value >= 0.0 and math.isfinite(f.value)
        assert f.explanation and f.action and f.evidence


def test_thresholds_tuple_matches_params() -> None:
    p = MarginParams(min_drop=0.08, min_z=1.5, sustain=4, min_history=5, baseline_span=9,
                     floor_margin=0.1, recover_within=0.04)
    assert p.thresholds() == Thresholds(0.2, 5, 0.08, 1.5, 4, 0.1, 0.04)


# -- the judge -----------------------------------------------------------------------------


def test_judge_by_hand() -> None:
    """Customer J: 10% off (margin 1/3) on days 0..90, 30% off (1/7) on days 100..290, at
    10:00; the data ends on day 290 + 10h, so alerts up to day 200 + 10h are judgeable.

    J's alert on day 120 + 10h about a drop since day 100: before = margin over
    [100 - 365, 100) = 1/3, after = margin over (120, 210] = 1/7 < 1/3: correct; lead =
    days to the next order below 1/3: day 130 + 10h, 10 days. K ordered at 1/3 on days
    0..150 only: its alert on day 160 (drop since day 140) has no order after: no outcome.
    """
    from sia.evaluation.judges import Judging
    from sia.evaluation.judges.margin import MarginEvaluator, _judge, _rule
    from sia.evaluation.outcomes import Outcomes
    from sia.policy import Alert

    events: list[Event] = [W] + [buy("J", d, 90.0 if d < 100 else 70.0)
                                 for d in range(0, 300, 10)]
    events += [buy("K", d, 90.0) for d in range(0, 160, 10)]
    events.sort(key=lambda e: e.occurred_at)
    judge = MarginEvaluator()
    for e in events:
        judge.see_event(e)

    def alert(who: str, day: float, since: str) -> Alert:
        f = Finding(detector="margin", kind="discount_creep", subject_kind="customer",
                    subject_id=who, occurred_at=at(day), score=0.5,
                    severity=Severity.MEDIUM, title="t", explanation="e 1", action="a",
                    dedup_key=f"k-{who}", evidence=("x",), facts={"since": since})
        return Alert(Alert.id_for(f), f)

    outcomes = Outcomes.from_events(events)
    report = judge.report([alert("J", 120 + HOUR10, "2024-04-10"),
                           alert("K", 160, "2024-05-20")],
                          Judging(outcomes, 90.0, 1.0))
    mine = report["kinds"]["customer"]
    assert (mine["alerts"], mine["precision"], mine["no_outcome"]) == (1, 1.0, 1)
    assert mine["median_lead_days"] == 10.0
    assert report["causes"]["discount_creep"]["alerts"] == 1
    # The matched rule: below any X in (1/7, 1/3] it fires on J's days 100, 130, 160, 190
    # (+10h; once per 30 days; later ones unjudgeable): 4 judged alerts, not 1; at X <= 1/7
    # none. 0 is closest to the detector's 1, so no threshold matches.
    assert mine["baseline"]["alerts"] == 0
    assert mine["baseline"]["name"] == "no threshold raises as many alerts"
    series = {"J": judge._series()[("customer", "J")]}
    fired = _rule(series, 0.2)
    assert [round(d - fired[0][1]) for _, d, _ in fired] == [0, 30, 60, 90, 120, 150, 180]
    # day 130's "before" holds days 0..120: (3000 + 300) / (9000 + 2100) = 0.2973 > 1/7
    tally = _judge(series, fired, 90.0, outcomes)
    assert (tally.judged.alerts, tally.judged.correct, tally.judged.unjudged) == (4, 4, 3)
    day130 = T0_DAY + 130 + HOUR10
    assert series["J"].level(day130 - 1, day130) == pytest.approx(1 / 7)
    assert series["J"].level(day130 - 365, day130 - 1e-9) == pytest.approx(3300 / 11100)
