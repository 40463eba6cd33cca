"""Up-sell by hand: price breaks read from a (quantity, price) table, the customer's slots,
the online model, the price-break and upgrade findings, and the evaluator.

The population of the detector tests (product P, "paper cups", sold at 2.00 a unit and
1.70 from 24 units a line): B1..B3 buy 24 at 1.70 and S1..S3 buy 6 at 2.00, two orders
each on days 0 and 7. That is 12 lines; with min_break_lines = 3 the breaks are read
after 6 lines (2 * min_break_lines) and again after 12 (as many new lines as the table
held), so from day 7 on the table holds (6 units, 2.00) x 6 and (24, 1.70) x 6 and shows:

    price level 1.70: cheap lines by quantity {24: 6}
      Q = 24: errors = cheap below (0) + dear from 24 up (12 - 6 - 6 = 0) = 0
      lines below 24: 6 >= 3, none at 1.70 (0 <= 0.1 * 6); from 24 up: 6 of 6 cheap
      usual price below 24 = 2.00; 1.70 <= 2.00 * (1 - 0.05)
    -> Break(quantity 24, price 1.70, usual 2.00, share 6/6 = 1.0, lines 6,
             popularity 6/12 = 0.5)
    price level 2.00: every line is "2.00 or less", so the stump puts Q at 6, with no line
    below it (0 < 3): no break.
"""

from __future__ import annotations

import itertools
import json
import math
import pickle
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sia.detectors.copurchase import wilson_lower
from sia.detectors.up_sell import UpSellDetector, UpSellParams
from sia.detectors.up_sell_breaks import Break, PriceBreaks, next_break
from sia.detectors.up_sell_model import FEATURES, BreakModel
from sia.detectors.up_sell_state import UpSellCustomer
from sia.engine.admission import TimeLimits
from sia.engine.engine import Engine
from sia.engine.partitions import partition_for
from sia.engine.population import Outbox
from sia.evaluation.evaluate import alert_day
from sia.evaluation.judges import Judging
from sia.evaluation.judges.up_sell import UpSellEvaluator
from sia.evaluation.outcomes import Outcomes
from sia.events.models import Event, Order, OrderLine, Product
from sia.findings import Finding, Severity
from sia.policy import Alert

from . import checks
from .builders import T0_DAY, at, product

HAND = {"min_labels": 0, "min_break_lines": 3.0, "recheck_days": 0.0,
        "min_probability": 0.3}

# these hand-built streams pause for months or come out of order: the engine's time
# bounds (tests/hardening/test_engine_input.py) are not what they test
OUT_OF_ORDER = TimeLimits(max_gap=timedelta(days=3650), max_late=timedelta(days=3650))


def buy(customer: str, day: float, *lines: tuple[str, float, float]) -> Order:
    """An order of (product, quantity, unit price) lines, in GBP."""
    n = f"{customer}-{day:g}-{'-'.join(p for p, _, _ in lines)}"
    return Order(event_id=f"o-{n}", occurred_at=at(day), customer_id=customer,
                 order_id=f"SO-{n}", currency="GBP",
                 lines=[OrderLine(product_id=p, quantity=q, unit_price=u) for p, q, u in lines])


def feed(engine: Engine, events: Iterable[Event]) -> list[Finding]:
    out: list[Finding] = []
    for event in events:
        out.extend(engine.observe(event))
    return out


def population() -> list[Event]:
    """B1..B3 buy 24 at 1.70, S1..S3 buy 6 at 2.00, on days 0 and 7 (12 lines of P)."""
    events: list[Event] = [product("P", "paper cups")]
    for day in (0, 7):
        for i in (1, 2, 3):
            events.append(buy(f"B{i}", day, ("P", 24.0, 1.70)))
            events.append(buy(f"S{i}", day, ("P", 6.0, 2.00)))
    return events


# -- price breaks ----------------------------------------------------------------------


def test_read_finds_the_break_with_hand_computed_stump() -> None:
    # 6 at 2.00 x10, 12 at 2.00 x6, 24 at 1.70 x8 and at 2.00 x1, 48 at 1.70 x4: 29 lines
    cells = {(6.0, 200): 10.0, (12.0, 200): 6.0, (24.0, 170): 8.0, (24.0, 200): 1.0,
             (48.0, 170): 4.0}
    # level 1.70, cheap {24: 8, 48: 4} = 12 lines:
    #   Q = 24: below = 16 lines, none cheap; errors = 0 + (29 - 16) - 12 = 1
    #   Q = 48: below = 25 lines, 8 cheap;    errors = 8 + (29 - 25) - 4 = 8
    # -> Q = 24, share 12 / 13, usual 2.00 (16 lines below 24), popularity 13 / 29
    (brk,) = PriceBreaks().read(cells)
    assert brk == Break(24.0, 1.70, 2.00, 12 / 13, 12.0, 13 / 29)
    assert brk.discount == pytest.approx(0.15)
    assert next_break((brk,), 23.0) is brk
    assert next_break((brk,), 24.0) is None


def test_a_second_cheaper_break_and_a_price_change_that_is_no_break() -> None:
    cells = {(6.0, 200): 10.0, (24.0, 170): 8.0, (48.0, 150): 6.0}
    # level 1.70 (14 lines at 1.70 or less, all from 24 up): Q = 24, share 14/14
    # level 1.50 (6 lines, all at 48):  Q = 48, below: 18 lines, none at 1.50, share 6/6;
    #   usual below 48: 2.00 (10 lines) over 1.70 (8): the most common price
    ladder = PriceBreaks().read(cells)
    assert [(b.quantity, b.price, b.usual) for b in ladder] == [(24.0, 1.70, 2.00),
                                                                (48.0, 1.50, 2.00)]
    # a price cut for everyone: 1.80 at every quantity is not a quantity break
    # (level 1.80: Q = 6 has nothing below; the stray share rules out any other Q)
    cut = {(6.0, 200): 10.0, (6.0, 180): 10.0, (24.0, 200): 4.0, (24.0, 180): 4.0}
    assert PriceBreaks().read(cut) == ()
    # too small a discount: 1.95 against 2.00 is 2.5% < min_discount 5%
    assert PriceBreaks().read({(6.0, 200): 10.0, (24.0, 195): 10.0}) == ()
    assert PriceBreaks(min_discount=0.02).read({(6.0, 200): 10.0, (24.0, 195): 10.0})


def test_breaks_are_read_when_the_table_has_doubled() -> None:
    breaks = PriceBreaks(min_break_lines=3.0)
    breaks.grow(1)
    seen = []
    for k in range(12):
        quantity, price = (24.0, 1.70) if k % 2 else (6.0, 2.00)
        seen.append(breaks.add(0, quantity, price))
    # first read after 2 * 3 = 6 lines (3 and 3: below 24 only 3 lines, fine: 3 >= 3),
    # then due = 6 more lines: read again after the 12th
    assert [bool(ladder) for ladder in seen] == [False] * 5 + [True] * 7
    assert breaks.due[0] == 12.0 and breaks.fresh[0] == 0.0
    assert seen[-1][0].quantity == 24.0 and seen[-1][0].popularity == 0.5


def test_memory_is_bounded_and_old_prices_fade() -> None:
    breaks = PriceBreaks(max_cells=4, memory_lines=40.0, min_break_lines=3.0)
    breaks.grow(1)
    for k in range(100):
        breaks.add(0, float(k % 9 + 1), 2.0)  # 9 quantities: the table is pruned to 4
        assert len(breaks.cells[0]) <= 2 * 4
    assert sum(breaks.cells[0].values()) < 40.0  # halved at least once


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1.0, 2.0, 6.0, 12.0, 24.0, 48.0, 100.0]),
                          st.sampled_from([150, 170, 180, 195, 200, 250])),
                min_size=1, max_size=300))
def test_ladders_are_ordered_cheaper_and_bounded(lines: list[tuple[float, int]]) -> None:
    breaks = PriceBreaks(min_break_lines=3.0, max_cells=8, memory_lines=100.0)
    breaks.grow(1)
    for quantity, cents in lines:
        ladder = breaks.add(0, quantity, cents / 100)
        assert len(breaks.cells[0]) <= 2 * 8
        assert len(ladder) <= 3
        for brk in ladder:
            assert brk.price <= brk.usual * 0.95 + 1e-9  # at least min_discount off
            assert 0.6 <= brk.share <= 1.0 and 0.0 < brk.popularity <= 1.0
        for lower, upper in itertools.pairwise(ladder):
            assert lower.quantity < upper.quantity and lower.price > upper.price


# -- the customer's state ----------------------------------------------------------------


def test_slot_arithmetic_and_compact_pickle() -> None:
    state = UpSellCustomer()
    state.orders = 1
    assert state.admit(7, 8.0, max_slots=2) == 0
    state.orders = 2
    state.update(state.slot_of(7), 12.0)
    state.orders = 3
    state.update(state.slot_of(7), 16.0)
    # fast EW (weight 0.5): 8 -> 10 -> 13; slow EW (weight max(0.15, 1/lines)):
    # lines 2: 8 + 0.5 * 4 = 10; lines 3: 10 + (16 - 10) / 3 = 12
    assert state.slots == [3, 3, 16.0, 13.0, 12.0]
    clone = pickle.loads(pickle.dumps(state))
    assert clone.slots == state.slots and clone.tracked == [7]
    assert len(pickle.dumps(state)) < 200


def test_admission_keeps_products_bought_again_and_again() -> None:
    state = UpSellCustomer()
    state.orders = 1
    state.admit(1, 10.0, max_slots=2)
    state.admit(2, 10.0, max_slots=2)
    state.update(0, 10.0)  # product 1: 2 lines in order 1
    # order 2, a third product: claims are 2 / (1 + 0.25 * 1) = 1.6 and 1 / 1.25 = 0.8;
    # only a claim below one line is given up: product 2's slot
    state.orders = 2
    assert state.admit(3, 10.0, max_slots=2) == 5
    assert state.tracked == [1, 3]
    # order 3: claims 2 / 1.5 = 1.33 and 1 / 1.25 = 0.8: product 3 gives way again
    state.orders = 3
    assert state.admit(4, 10.0, max_slots=2) == 5
    # same order: product 4's claim is 1 / 1 = 1, product 1's 1.33: no room
    assert state.admit(5, 10.0, max_slots=2) == -1
    assert state.tracked == [1, 4]


# -- the online model --------------------------------------------------------------------


def test_model_learns_only_when_the_horizon_has_passed() -> None:
    model = BreakModel(horizon_days=90.0, max_open=10, learning_rate=0.5, l2=0.0)
    x = (1.0, 0.5)
    model.weights, model.squares = [0.0, 0.0], [1e-6, 1e-6]
    assert model.predict(x) == 0.5
    model.watch("N", 3, 10.0, 24.0, x)
    model.watch("N", 3, 20.0, 24.0, (1.0, 0.9))  # one open situation per pair: ignored
    model.saw("N", 3, 20.0)  # below the break: no success yet
    model.resolve(99.9)
    assert model.labels == 0
    model.saw("N", 3, 24.0)
    model.resolve(100.0)  # due on day 10 + 90
    assert (model.labels, model.positives) == (1, 1) and not model.open
    # AdaGrad's first step: gradient (0.5 - 1) * x = (-0.5, -0.25), squares 0.25 and
    # 0.0625 (+1e-6), so each weight moves by 0.5 * |g| / sqrt(g^2) = 0.5 (to 1e-6)
    assert model.weights == pytest.approx([0.5, 0.5], abs=1e-5)
    assert model.predict(x) == pytest.approx(1 / (1 + math.exp(-0.75)), abs=1e-5)


def test_open_situations_are_bounded() -> None:
    model = BreakModel(horizon_days=90.0, max_open=2)
    for k in range(5):
        model.watch(f"C{k}", 0, 0.0, 24.0, (1.0,) * len(FEATURES))
    assert list(model.open) == [("C0", 0), ("C1", 0)]


# -- the detector: price breaks ------------------------------------------------------------


def test_price_break_finding_by_hand() -> None:
    detector = UpSellDetector(**HAND)
    engine = Engine([detector])
    assert feed(engine, population()) == []  # they buy at the break or far below it
    first = buy("N", 20, ("P", 12.0, 2.00))
    # 12 >= 0.4 * 24: tracked; but one order is not enough (min_orders = 2)
    assert engine.observe(first) == []
    second = buy("N", 27, ("P", 16.0, 2.00))
    (finding,) = engine.observe(second)
    # slot: lines 2, fast 12 + 0.5 * 4 = 14, slow 12 + 0.5 * 4 = 14 (weight 1/2), max 16
    # typical ratio 14 / 24 = 0.583 >= 0.5; no label learned yet: all weights are 0, p = 0.5
    assert finding.kind == "price_break" and finding.subject_id == "N"
    assert finding.score == 0.5
    assert finding.severity is Severity.HIGH
    assert finding.facts["break_quantity"] == 24.0 and finding.facts["break_price"] == 1.7
    assert finding.facts["typical_quantity"] == 14.0 and finding.facts["lines"] == 2
    # bulk share (0 + 0.5) / (2 + 5): neither of N's two lines reached the break
    assert finding.facts["bulk_share"] == pytest.approx(0.5 / 7, abs=1e-4)
    # about 14 units a line * 2 lines a quarter (tenure counted as at least 91 days)
    # = 28 units, each 0.30 cheaper at the break: 8.40 a quarter
    assert finding.facts["saving_per_quarter"] == pytest.approx(8.40)
    # the next line at the break is 24 * 1.70 = 40.80 against 16 * 2.00 = 32.00
    assert finding.value == pytest.approx(8.80)
    assert finding.title == "customer N: Paper Cups (P) 14 at a time, 15% off from 24"
    assert finding.explanation == (
        "customer N buys Paper Cups (P) 14 at a time, over 2 orders; 16 on this order at "
        "£2.00 a unit. From 24 units the price drops to £1.70 (15% off): 100% of lines of "
        "24 or more sell at that price or less. At their volume (about 28 units a quarter) "
        "that saves them about £8.40 a quarter. On 0 of their last 2 lines of products "
        "with a quantity price they bought enough to get it. Trained on 0 past cases in "
        "this stream, SIA puts the chance they buy 24 or more within 90 days at 50%."
    )
    assert finding.action == (
        "Offer customer N 24 units of Paper Cups (P) at £1.70 (£40.80) on the next order "
        "instead of 16 at £2.00 (£32.00): lead with the 15% unit saving.")
    assert finding.dedup_key == "up_sell:price_break:N:P:24"
    assert finding.evidence == (second.event_id,)
    # the features the model saw, one by one (see up_sell_model.FEATURES)
    state = detector.customers["N"]
    x = detector.features(state, 0, detector.breaks.ladders[0][0], 16.0)
    assert x == pytest.approx((1.0, 14 / 24, 16 / 24, 0.0, math.log(3), 0.5 / 7, 1.0, 0.0,
                               math.log(24) / 5, 0.5, math.log(3) / 3, 1.0))


def test_a_situation_becomes_a_label_after_the_horizon() -> None:
    detector = UpSellDetector(**HAND)
    engine = Engine([detector])
    feed(engine, population())
    feed(engine, [buy("N", 20, ("P", 12.0, 2.00)), buy("N", 27, ("P", 16.0, 2.00))])
    assert list(detector.model.open) == [("N", 0)]  # opened on day 20, due on day 110
    engine.observe(buy("N", 60, ("P", 24.0, 1.70)))  # crossed the break
    assert detector.model.labels == 0
    engine.observe(buy("N", 111, ("P", 12.0, 2.00)))
    assert (detector.model.labels, detector.model.positives) == (1, 1)
    assert detector.model.weights[0] > 0  # a success pushes the bias up


def test_thresholds_block_far_lines_and_repeat_findings() -> None:
    # far below the break: 6 and 8 are under 0.4 * 24 = 9.6, never even tracked
    engine = Engine([UpSellDetector(**HAND)])
    feed(engine, population())
    assert feed(engine, [buy("F", 20, ("P", 6.0, 2.00)), buy("F", 27, ("P", 8.0, 2.00))]) == []
    # 10 and 10: typical 10 / 24 = 0.42 < min_ratio 0.5
    assert feed(engine, [buy("G", 20, ("P", 10.0, 2.00)), buy("G", 27, ("P", 10.0, 2.00))]) == []
    # the model's chance (0.5 with no labels) below min_probability 0.6
    engine = Engine([UpSellDetector(**{**HAND, "min_probability": 0.6})])
    feed(engine, population())
    assert feed(engine, [buy("N", 20, ("P", 12.0, 2.00)), buy("N", 27, ("P", 16.0, 2.00))]) == []
    # at most one finding per customer in recheck_days
    engine = Engine([UpSellDetector(**{**HAND, "recheck_days": 14.0})])
    feed(engine, population())
    found = feed(engine, [buy("N", d, ("P", 16.0, 2.00)) for d in (20, 27, 34, 41, 48)])
    assert [f.occurred_at for f in found] == [at(27), at(41)]


def test_a_customer_already_paying_the_break_price_is_left_alone() -> None:
    engine = Engine([UpSellDetector(**HAND)])
    feed(engine, population())
    # 16 units at 1.80: the break saves 1.70 / 1.80 = 5.6% ... at least min_discount 5%
    assert len(feed(engine, [buy("N", 20, ("P", 16.0, 1.80)),
                             buy("N", 27, ("P", 16.0, 1.80))])) == 1
    # 16 at 1.75: 2.9% is too little to sell
    engine = Engine([UpSellDetector(**HAND)])
    feed(engine, population())
    assert feed(engine, [buy("N", 20, ("P", 16.0, 1.75)), buy("N", 27, ("P", 16.0, 1.75))]) == []


# -- the detector: upgrades -----------------------------------------------------------------


def tiered_catalogue() -> list[Event]:
    return [
        Product(event_id="prd-T1", occurred_at=at(-30), product_id="T1", name="basic plan",
                list_price=300.0, tier="entry", upgrade_to=["T2"]),
        Product(event_id="prd-T2", occurred_at=at(-30), product_id="T2", name="pro plan",
                list_price=900.0, tier="premium"),
    ]


def test_upgrade_finding_with_hand_computed_adoption() -> None:
    params = {**HAND, "min_entry_customers": 5, "min_adoption": 0.15}
    detector = UpSellDetector(**params)
    engine = Engine([detector], time_limits=OUT_OF_ORDER)  # adopters' orders come late
    events = tiered_catalogue()
    for i in (1, 2, 3):  # A1..A3 buy the entry plan, then the upgrade
        events += [buy(f"A{i}", 0, ("T1", 1.0, 300.0)), buy(f"A{i}", 10, ("T2", 1.0, 900.0))]
    for i in (4, 5):  # A4, A5 never upgrade
        events += [buy(f"A{i}", 0, ("T1", 1.0, 300.0)), buy(f"A{i}", 10, ("T1", 1.0, 300.0))]
    # Z bought the upgrade first: not an adoption after the entry plan
    events += [buy("Z", 0, ("T2", 1.0, 900.0)), buy("Z", 10, ("T1", 1.0, 300.0))]
    # events are fed in list order: by A5's second order, 5 customers bought T1 and
    # A1..A3 took T2 after it: Wilson lower bound of 3 in 5 = 0.2307 >= 0.15
    (early,) = feed(engine, events)
    assert early.subject_id == "A5" and early.score == pytest.approx(0.2307, abs=1e-4)
    assert early.score == pytest.approx(wilson_lower(3, 5), abs=1e-4)
    assert engine.observe(buy("N", 20, ("T1", 1.0, 300.0))) == []
    second = buy("N", 27, ("T1", 1.0, 280.0))
    (finding,) = engine.observe(second)
    # buyers of T1: A1..A5, Z, N = 7; adopters: A1..A3 = 3; Wilson lower bound of 3 in 7:
    #   p = 3/7, z^2/n = 3.8416/7 = 0.548800
    #   centre = 0.428571 + 0.274400 = 0.702971
    #   margin = 1.96 * sqrt(0.428571 * 0.571429 / 7 + 3.8416 / 196)
    #          = 1.96 * sqrt(0.034985 + 0.019600) = 1.96 * 0.233634 = 0.457923
    #   lower = (0.702971 - 0.457923) / 1.548800 = 0.158218
    assert finding.kind == "upgrade" and finding.subject_id == "N"
    assert finding.score == pytest.approx(0.1582, abs=1e-4)
    assert finding.score == pytest.approx(wilson_lower(3, 7), abs=1e-4)
    assert finding.severity is Severity.LOW
    assert (finding.facts["entry_buyers"], finding.facts["adopters"]) == (7, 3)
    assert finding.facts["product_id"] == "T2" and finding.facts["entry_orders"] == 2
    # value: (900 list - 280 paid) * 3/7 adoption
    assert finding.value == pytest.approx(620 * 3 / 7, abs=0.01)
    assert finding.explanation == (
        "customer N has bought Basic Plan (T1) in 2 orders since 2024-01-21, never Pro "
        "Plan (T2), its next tier. 3 of the 7 customers who bought Basic Plan (T1) went on "
        "to buy Pro Plan (T2) (43%; at least 16% allowing for the sample size). Pro Plan "
        "(T2) lists at £900 against the £280 paid for Basic Plan (T1) on this order.")
    assert finding.dedup_key == "up_sell:upgrade:N:T2"
    # a customer who has the upgrade already is not offered it
    assert engine.observe(buy("A1", 40, ("T1", 1.0, 300.0))) == []
    # stricter adoption bar: 0.158 < 0.2, nothing for N
    engine = Engine([UpSellDetector(**{**params, "min_adoption": 0.2})],
                    time_limits=OUT_OF_ORDER)
    assert len(feed(engine, events)) == 1  # A5 still: 0.2307 >= 0.2
    assert feed(engine, [buy("N", 20, ("T1", 1.0, 300.0)), buy("N", 27, ("T1", 1.0, 300.0))]) \
        == []


# -- contract-adjacent ----------------------------------------------------------------------


def test_bare_arithmetic_learns_what_observe_learns(stream: tuple[Event, ...]) -> None:
    bare = UpSellDetector(**UpSellDetector.unit_test_params())
    loop = bare.bare_arithmetic(stream)
    assert loop is not None
    loop()
    full = UpSellDetector(**UpSellDetector.unit_test_params())
    checks.drive(full, checks.StreamContext(), checks.steps_of(stream))
    for state in full.customers.values():
        state.fired_at = -1e9  # the only difference: bare arithmetic never fires
    assert bare.breaks.ladders == full.breaks.ladders
    assert bare.model.weights == full.model.weights
    assert {c: pickle.dumps(s) for c, s in bare.customers.items()} == {
        c: pickle.dumps(s) for c, s in full.customers.items()}
    assert bare.adopters == full.adopters and bare.adopters


def _population(detector: UpSellDetector) -> dict[str, Any]:
    """The detector's population models, by product id (indexes are its own)."""
    ids, breaks, model = detector.product_ids, detector.breaks, detector.model
    return {
        "cells": {ids[i]: table for i, table in enumerate(breaks.cells) if table},
        "reads": {ids[i]: (breaks.total[i], breaks.fresh[i], breaks.due[i],
                           breaks.since_halving[i], breaks.ladders[i])
                  for i, table in enumerate(breaks.cells) if table},
        "model": (model.weights, model.squares, model.labels, model.positives),
        "tier_buyers": {ids[i]: n for i, n in detector.tier_buyers.items()},
        "adopters": {(ids[e], ids[u]): n for (e, u), n in detector.adopters.items()},
    }


def test_two_partitions_exchanging_updates_learn_what_one_instance_learns(
        stream: tuple[Event, ...]) -> None:
    """Each half of the customers learned by its own instance, each instance learning
    the other's updates (after a trip through JSON) in stream order: both learn the
    population models of one instance that saw every customer, product by product,
    though their product indexes differ, and together they find what it finds."""
    params = UpSellDetector.unit_test_params()
    whole = UpSellDetector(**params)
    halves = [UpSellDetector(**params), UpSellDetector(**params)]
    # the second half met the products in another order first: its indexes differ
    sold = sorted({line.product_id for e in stream if isinstance(e, Order) for line in e.lines})
    for product_id in reversed(sold):
        halves[1]._index(product_id)
    outboxes = [Outbox(), Outbox()]
    for half, outbox in zip(halves, outboxes, strict=True):
        half.population_outbox = outbox
    ctx = checks.StreamContext()
    found: list[list[dict[str, Any]]] = [[], []]
    for event in stream:
        if isinstance(event, Product):
            ctx.catalog.update(event)
            learners = [0, 1]  # reference data goes to every partition
        elif isinstance(event, Order):
            learners = [partition_for(event.customer_id, 2)]
        else:
            continue
        found[0] += [f.to_dict() for f in whole.observe(event, ctx)]
        for k in learners:
            found[1] += [f.to_dict() for f in halves[k].observe(event, ctx)]
            for *_, update in outboxes[k]:
                halves[1 - k].learn_population(tuple(json.loads(json.dumps(update))))
            outboxes[k].clear()
    assert halves[0].product_index != halves[1].product_index
    assert halves[0].customers and halves[1].customers
    assert not set(halves[0].customers) & set(halves[1].customers)
    reference = _population(whole)
    assert reference["model"][2] > 0 and reference["adopters"]  # not vacuous
    assert _population(halves[0]) == reference
    assert _population(halves[1]) == reference
    assert found[1] == found[0]
    assert {f["kind"] for f in found[0]} == {"price_break", "upgrade"}


def test_an_order_repeating_a_product_is_shared_in_runs_of_distinct_products() -> None:
    # each line must meet its product's breaks as they are right after it, as when the
    # tables learned line by line: a product that comes back starts a new update
    detector = UpSellDetector(**HAND)
    outbox = Outbox()
    detector.population_outbox = outbox
    detector.learn_order("N", 0.0, [("A", 2.00, 6.0), ("B", 1.00, 1.0), ("A", 1.70, 24.0),
                                    ("C", 0.50, 2.0), ("B", 0.995, 3.0)])
    assert [update for *_, update in outbox] == [
        ("lines", ["A", "B"], [6.0, 1.0], [200, 100]),
        ("lines", ["A", "C", "B"], [24.0, 2.0, 3.0], [170, 50, 100])]
    assert detector.breaks.cells[detector.product_index["B"]] == {(1.0, 100): 1.0,
                                                                   (3.0, 100): 1.0}


def test_findings_on_the_synthetic_stream(stream: tuple[Event, ...]) -> None:
    emitted = [f for _, f in checks.run_all(UpSellDetector, stream)]
    kinds = {(f.kind, f.subject_id) for f in emitted}
    assert ("price_break", "up_sell-G1") in kinds and ("price_break", "up_sell-G2") in kinds
    assert {s for k, s in kinds if k == "upgrade"} == {"up_sell-U3", "up_sell-U4",
                                                       "up_sell-U5"}
    for f in emitted:
        if f.kind == "price_break":
            assert f.facts["quantity"] < f.facts["break_quantity"]
            assert f.facts["break_price"] <= 0.95 * f.facts["unit_price"] + 1e-9


def test_params_ranges_name_the_field() -> None:
    cases: tuple[tuple[str, Any], ...] = (
        ("min_probability", 1.0), ("min_ratio", 0.0), ("min_orders", 1),
        ("horizon_days", 3.0), ("min_discount", 0.0), ("break_share", 0.4),
        ("stray_share", 0.5), ("max_products", 0), ("min_adoption", 1.0),
        ("learning_rate", 0.0))
    for key, value in cases:
        with pytest.raises(ValueError, match=key):
            UpSellParams(**{key: value})


# -- the evaluator ----------------------------------------------------------------------------


def _alert(customer: str, day: float, facts: dict[str, Any], kind: str = "price_break"
           ) -> Alert:
    finding = Finding(detector="up_sell", kind=kind, subject_kind="customer",
                      subject_id=customer, occurred_at=at(day), score=0.5,
                      severity=Severity.LOW, title="t", explanation="e 1", action="a",
                      dedup_key=f"k-{customer}-{day}", evidence=("x",), facts=facts)
    return Alert(Alert.id_for(finding), finding)


def test_evaluator_judges_crossings_and_runs_the_growth_rule() -> None:
    judge = UpSellEvaluator()
    events = population()
    # N: 4 units in the first quarter, then 12 and 16 (up 600%), crosses on day 130;
    # M: 10 a time, never crosses; the data runs to day 300
    events += [buy("N", 10, ("P", 4.0, 2.0)), buy("N", 100, ("P", 12.0, 2.0)),
               buy("N", 110, ("P", 16.0, 2.0)), buy("N", 130, ("P", 24.0, 1.7)),
               buy("M", 100, ("P", 10.0, 2.0)), buy("M", 110, ("P", 10.0, 2.0)),
               buy("M", 300, ("P", 6.0, 2.0))]
    for event in events:
        judge.see_event(event)
    outcomes = Outcomes.from_events(events)
    facts = {"product_id": "P", "break_quantity": 24.0}
    alerts = [_alert("N", 110.5, facts), _alert("M", 110.5, facts), _alert("M", 250, facts)]
    report = judge.report(alerts, Judging(outcomes, 90.0, 1.0))
    # N crosses 19.5 days later: right; M never: wrong; M on day 250: 250 + 90 > 300
    assert (report["alerts"], report["unjudged"], report["precision"]) == (2, 1, 0.5)
    assert report["median_lead_days"] == 19.5
    # one crossing (N on day 130: last line 16 < 24 <= 24), caught by the alert on 110.5
    assert report["crossings"] == 1 and report["recall"] == 1.0
    # growth rule: on day 100 N's last 91 days (9, 100] hold 4 + 12 units and the 91 before
    # none (no growth to speak of); on day 110, (19, 110] holds 12 + 16 = 28 against 4 in
    # (-72, 19]: +600%. M has nothing the quarter before. Even the smallest step (+50%)
    # fires only once, for N on day 110: crossed 20 days later
    base = report["baseline"]
    assert base["alerts"] == 1 and base["precision"] == 1.0 and base["median_lead_days"] == 20
    assert base["name"] == "quantity of the product up 50% quarter on quarter, break above"
    assert report["baselines"][1]["alerts"] == 1
    assert report["judged_kind"] == "price_break"
    assert alert_day(alerts[0]) == pytest.approx(T0_DAY + 110.5)
