"""Cross-sell by hand: co-purchase counts, confidence, lift, Wilson bound, throttling.

The population in most tests (half-life 1e9 days, so decay is below 1e-7 over the
month the tests span, and regular_after=2):

- C1..C4 buy A and B in two orders: A and B are "regular" for each;
- F1..F5 buy Z in two orders;
- N buys A twice.

When N's second order makes A regular for N, the model holds
    customers with a regular product = 4 + 5 + 1 = 10
    support(A) = 5 (C1..C4 and N), support(B) = 4, pairs(A, B) = 4
so for N: confidence(A -> B) = 4/5 = 0.8, share(B) = 4/10 = 0.4, lift = 0.8/0.4 = 2.0,
and the score is the Wilson lower bound of 4 successes in 5 trials at z = 1.96:
    p = 0.8, z^2 = 3.8416
    centre = p + z^2/(2n) = 0.8 + 0.38416 = 1.18416
    margin = z * sqrt(p(1-p)/n + z^2/(4n^2)) = 1.96 * sqrt(0.032 + 0.038416) = 0.520106
    lower  = (centre - margin) / (1 + z^2/n) = 0.664054 / 1.76832 = 0.375528
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sia.detectors.copurchase import CoPurchase, wilson_lower
from sia.detectors.cross_sell import CrossSellDetector, CrossSellParams
from sia.engine.engine import Engine
from sia.engine.population import Outbox
from sia.events.models import Event, Order
from sia.findings import Finding, Severity

from . import checks
from .builders import T0_DAY, order, product

HAND = {"regular_after": 2, "min_orders": 2, "min_pair_customers": 2.0, "min_lift": 1.5,
        "min_confidence": 0.3, "recheck_days": 30.0, "half_life_days": 1e9}


def wilson_reference(k: float, n: float, z: float = 1.96) -> float:
    """Wilson (1927) lower bound, written out independently of the code under test."""
    p = k / n
    return (p + z**2 / (2 * n) - z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))) / (
        1 + z**2 / n)


def feed(engine: Engine, events: Iterable[Event]) -> list[Finding]:
    out: list[Finding] = []
    for event in events:
        out.extend(engine.observe(event))
    return out


def population(*, both: Iterable[str] = ("A", "B"), fillers: Iterable[str] = ("Z",)
               ) -> list[Event]:
    """C1..C4 buy `both`, F1..F5 buy `fillers`, each in two orders a week apart."""
    events: list[Event] = [product("A", "anchor bolts"), product("B", "bolt washers")]
    for i in range(1, 5):
        events += [order(f"C{i}", 0, 36.0, both, quantity=3.0),
                   order(f"C{i}", 7, 36.0, both, quantity=3.0)]
    for i in range(1, 6):
        events += [order(f"F{i}", 1, 50.0, fillers), order(f"F{i}", 8, 50.0, fillers)]
    return events


def test_wilson_lower_known_values() -> None:
    assert wilson_lower(8, 10) == pytest.approx(0.4902, abs=5e-5)
    assert wilson_lower(8, 10) == pytest.approx(wilson_reference(8, 10), rel=1e-12)
    assert wilson_lower(4, 5) == pytest.approx(0.375528, abs=1e-6)
    # all successes: (1 + z^2/(2n) - z^2/(2n)) / (1 + z^2/n) = 1 / (1 + 3.8416/10)
    assert wilson_lower(10, 10) == pytest.approx(1 / 1.38416, rel=1e-12)
    assert wilson_lower(0, 10) == 0.0
    assert wilson_lower(3, 0) == 0.0
    assert wilson_lower(80, 100) > wilson_lower(8, 10)  # more evidence, tighter bound
    assert wilson_lower(8, 10, z=2.576) < wilson_lower(8, 10)  # more confidence, lower


@given(st.integers(0, 500), st.integers(1, 500))
def test_wilson_lower_is_a_lower_bound(k: int, n: int) -> None:
    k = min(k, n)
    low = wilson_lower(k, n)
    assert 0.0 <= low <= k / n + 1e-12
    assert low == pytest.approx(wilson_reference(k, n), abs=1e-12)


def test_suggests_b_with_hand_computed_confidence_lift_and_score() -> None:
    detector = CrossSellDetector(**HAND)
    engine = Engine([detector])
    assert feed(engine, population()) == []  # nobody lacks anything their peers buy
    first = order("N", 20, 20.0, ["A"])
    assert engine.observe(first) == []  # one order: min_orders=2 not reached
    second = order("N", 27, 20.0, ["A"])
    (finding,) = engine.observe(second)

    assert finding.detector == "cross_sell" and finding.kind == "pair"
    assert finding.subject_id == "N"
    assert finding.facts["product_id"] == "B" and finding.facts["because_of"] == "A"
    assert finding.facts["confidence"] == pytest.approx(0.8, abs=1e-4)
    assert finding.facts["lift"] == pytest.approx(2.0, abs=1e-3)
    assert finding.facts["buyers_of_anchor"] == pytest.approx(5.0)
    assert (finding.facts["anchor_orders"], finding.facts["customer_orders"]) == (2, 2)
    assert finding.score == pytest.approx(0.3755, abs=1e-4)
    assert finding.score == pytest.approx(wilson_reference(4, 5), abs=1e-4)
    assert finding.severity is Severity.MEDIUM  # 0.3 <= score < 0.5
    # B sells at 36 / 3 units / 2 products = 6.00 a unit, 3 units a line: 18.00 a line
    assert finding.value == pytest.approx(0.8 * 18.0, abs=0.01)
    assert finding.explanation == (
        "80% of the 5 customers who buy Anchor Bolts (A) regularly also buy Bolt Washers (B) "
        "(2.0 times the 40% of customers overall). customer N bought Anchor Bolts (A) in 2 "
        "of their 2 orders, never Bolt Washers (B)."
    )
    assert "£6.00 a unit" in finding.action and "3 units" in finding.action
    assert "(£18.00)" in finding.action
    assert finding.dedup_key == "cross_sell:N:B"
    assert finding.evidence == (second.event_id,)
    assert finding.occurred_at == second.occurred_at

    model = detector.model
    index = detector.product_index
    deflate = model.deflate(T0_DAY + 27)
    assert model.customers * deflate == pytest.approx(10.0, rel=1e-6)
    assert model.support[index["A"]] * deflate == pytest.approx(5.0, rel=1e-6)
    assert model.support[index["B"]] * deflate == pytest.approx(4.0, rel=1e-6)
    assert model.pairs[index["A"]][index["B"]] * deflate == pytest.approx(4.0, rel=1e-6)


def test_a_product_the_customer_already_bought_is_never_suggested() -> None:
    detector = CrossSellDetector(**HAND)
    engine = Engine([detector])
    feed(engine, population())
    # N bought B once (not regularly): B is not new to them, so nothing to offer
    assert engine.observe(order("N", 20, 20.0, ["A", "B"])) == []
    assert engine.observe(order("N", 27, 20.0, ["A"])) == []
    assert engine.observe(order("N", 60, 20.0, ["A"])) == []


def test_suggestions_on_the_synthetic_stream_are_always_new_to_the_customer(
        stream: tuple[Event, ...]) -> None:
    detector = checks.fresh(CrossSellDetector)
    ctx = checks.StreamContext()
    bought: dict[str, set[str]] = {}
    offers = 0

    def record(event: Event, findings: list[Finding]) -> None:
        nonlocal offers
        if isinstance(event, Order):
            mine = bought.setdefault(event.customer_id, set())
            for f in findings:
                offers += 1
                assert f.facts["product_id"] not in mine | {p.product_id for p in event.lines}
                assert f.facts["because_of"] in mine | {p.product_id for p in event.lines}
                assert 0.0 < f.facts["confidence"] <= 1.0
            mine.update(line.product_id for line in event.lines)

    checks.drive(detector, ctx, checks.steps_of(stream), on_event=record)
    assert offers > 50


def test_lift_threshold_blocks_a_product_everyone_buys() -> None:
    # E is bought by C1..C4 with A and by every filler: 9 of the 10 customers.
    # For N: confidence(A -> E) = 4/5 = 0.8, share(E) = 9/10, lift = 0.8/0.9 = 0.889 < 1
    blocked = CrossSellDetector(**{**HAND, "min_lift": 1.0})
    engine = Engine([blocked])
    feed(engine, population(both=("A", "E"), fillers=("Z", "E")))
    assert feed(engine, [order("N", 20, 20.0, ["A"]), order("N", 27, 20.0, ["A"])]) == []
    # control: when only C1..C4 buy E, share(E) = 4/10 and the same pair is offered
    control = CrossSellDetector(**{**HAND, "min_lift": 1.0})
    engine = Engine([control])
    feed(engine, population(both=("A", "E"), fillers=("Z",)))
    (finding,) = feed(engine, [order("N", 20, 20.0, ["A"]), order("N", 27, 20.0, ["A"])])
    assert finding.facts["product_id"] == "E"
    assert finding.facts["confidence"] == pytest.approx(0.8, abs=1e-4)
    # and lift 2.0 is blocked by a threshold above it
    strict = CrossSellDetector(**{**HAND, "min_lift": 2.5})
    engine = Engine([strict])
    feed(engine, population(both=("A", "E"), fillers=("Z",)))
    assert feed(engine, [order("N", 20, 20.0, ["A"]), order("N", 27, 20.0, ["A"])]) == []


def test_min_confidence_and_min_pair_customers_block_weak_pairs() -> None:
    for override in ({"min_confidence": 0.85}, {"min_pair_customers": 4.5}):
        detector = CrossSellDetector(**{**HAND, **override})
        engine = Engine([detector])
        feed(engine, population())
        assert feed(engine, [order("N", 20, 20.0, ["A"]), order("N", 27, 20.0, ["A"])]) == []


def test_recheck_days_throttles_suggestions() -> None:
    detector = CrossSellDetector(**HAND)  # recheck_days = 30
    engine = Engine([detector])
    feed(engine, population())
    engine.observe(order("N", 20, 20.0, ["A"]))
    (first,) = engine.observe(order("N", 27, 20.0, ["A"]))
    # 7 days later: still a good suggestion, but the customer was looked at 7 days ago
    assert engine.observe(order("N", 34, 20.0, ["A"])) == []
    basket = detector.baskets["N"]
    again = detector.suggest(basket, T0_DAY + 34, detector.params)
    assert again is not None and detector.product_ids[again.product] == "B"
    assert basket.checked_at == pytest.approx(T0_DAY + 27)
    # 29 days after the last look: still throttled; 31 days after: suggested again
    assert engine.observe(order("N", 56, 20.0, ["A"])) == []
    (second,) = engine.observe(order("N", 58, 20.0, ["A"]))
    assert second.dedup_key == first.dedup_key == "cross_sell:N:B"
    assert (second.facts["anchor_orders"], second.facts["customer_orders"]) == (5, 5)
    assert "in 5 of their 5 orders" in second.explanation


def test_copurchase_decay_by_hand() -> None:
    # half-life 10 days: every count a customer adds weighs 2 ** (d / 10), d being the day
    # the customer first became a regular buyer of anything
    model = CoPurchase(half_life_days=10.0, max_neighbours=60)
    model.grow(3)
    model.add_regular(0, [], 100)  # customer X: product 0 regular on day 100
    model.add_regular(1, [], 110)  # customer Y: product 1 regular on day 110
    model.add_regular(0, [1], 110)  # Y: product 0 regular later, still weighs day 110
    # as of day 130: support(0) = 0.5 ** 3 (X) + 0.5 ** 2 (Y) = 0.375 customers
    d = model.deflate(130.0)
    assert model.support[0] * d == pytest.approx(0.5**3 + 0.5**2)
    assert model.support[1] * d == pytest.approx(0.5**2)
    assert model.pairs[0][1] * d == pytest.approx(0.5**2)
    assert model.pairs[1][0] * d == pytest.approx(0.5**2)
    assert model.customers * d == pytest.approx(0.5**3 + 0.5**2)
    # confidence is a ratio of inflated counts: no decay needed
    assert model.pairs[1][0] / model.support[1] == pytest.approx(1.0)
    assert model.pairs[0][1] / model.support[0] == pytest.approx(0.25 / 0.375)


def test_copurchase_rebase_keeps_ratios_and_deflated_counts() -> None:
    model = CoPurchase(half_life_days=1.0, max_neighbours=60)  # tau = 1.4427 days
    model.grow(4)
    for day in range(0, 30, 3):
        model.add_regular(day % 4, [(day + 1) % 4], max(day - 2, 0))
    assert model.origin == 0.0  # (27 - 0) / 1.4427 = 18.7 < 25: no rebase yet
    ratios = {(a, b): n / model.support[a] for a, row in enumerate(model.pairs)
              for b, n in row.items()}
    deflated = [s * model.deflate(60.0) for s in model.support]
    customers = model.customers * model.deflate(60.0)
    assert model.weight(60.0) == 1.0  # 60 / 1.4427 = 41.6 > 25: rebased to day 60
    assert model.origin == 60.0
    assert {(a, b): n / model.support[a] for a, row in enumerate(model.pairs)
            for b, n in row.items()} == pytest.approx(ratios, rel=1e-9)
    assert model.support == pytest.approx(deflated, rel=1e-9)
    assert model.customers == pytest.approx(customers, rel=1e-9)
    assert max(model.support) < 1.0  # everything is older than the new origin


events_strategy = st.lists(
    st.tuples(st.integers(0, 7), st.lists(st.integers(0, 9), min_size=1, max_size=4),
              st.floats(0.0, 400.0)),
    min_size=1, max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(events_strategy, st.sampled_from([0.5, 5.0, 30.0, 365.0, 1e9]), st.integers(1, 3))
def test_confidence_never_exceeds_one(
        orders: list[tuple[int, list[int], float]], half_life: float, max_neighbours: int
) -> None:
    """Whatever the order of days, decay and pruning, a pair never outweighs its anchor."""
    detector = CrossSellDetector(half_life_days=half_life, max_neighbours=max_neighbours,
                                 min_orders=1, min_pair_customers=1.0, min_lift=1.0,
                                 min_confidence=0.01, recheck_days=0.0)
    engine = Engine([detector])
    for n, (who, products, day) in enumerate(orders):
        findings = engine.observe(order(f"K{who}", day, 10.0, [f"P{p}" for p in products],
                                        event_id=f"h-{n}"))
        for f in findings:
            assert 0.0 < f.facts["confidence"] <= 1.0
            assert 0.0 <= f.score <= 1.0
        model = detector.model
        for anchor, row in enumerate(model.pairs):
            for other, both in row.items():
                assert both <= model.support[anchor] * (1 + 1e-9), (anchor, other)
                assert both <= model.support[other] * (1 + 1e-9), (anchor, other)
        for support in model.support:
            assert support <= model.customers * (1 + 1e-9)


def test_share_of_customers_never_exceeds_one() -> None:
    # one customer: product 0 regular on day 100, product 1 on day 120, half-life 10 days.
    # customers = 2**(100/10) (inflated), support(1) = 2**(120/10): share(1) = 4.0
    model = CoPurchase(half_life_days=10.0, max_neighbours=60)
    model.grow(2)
    model.add_regular(0, [], 100)
    model.add_regular(1, [0], 100)
    assert model.support[1] / model.customers <= 1.0


def test_short_half_life_does_not_overflow() -> None:
    # 2024-01-01 is day 19723; tau = 14 / ln 2 = 20.2; exp(19723 / 20.2) = exp(976) > 1e308
    detector = CrossSellDetector(half_life_days=14.0)  # accepted by CrossSellParams.check
    engine = Engine([detector])
    engine.observe(order("K", 0, 10.0, ["A"]))
    engine.observe(order("K", 7, 10.0, ["A"]))  # A becomes regular: add_regular -> weight
    assert detector.model.support[detector.product_index["A"]] > 0


def test_params_ranges_name_the_field() -> None:
    cases: tuple[tuple[str, Any], ...] = (
        ("min_confidence", 0.0), ("min_lift", 0.5), ("half_life_days", 0.0),
        ("regular_after", 0), ("max_regular", 1), ("recheck_days", -1.0))
    for key, value in cases:
        with pytest.raises(ValueError, match=key):
            CrossSellParams(**{key: value})
    assert CrossSellParams(min_lift=2).min_lift == 2.0  # ints are accepted for floats
    assert isinstance(CrossSellParams(min_lift=2).min_lift, float)
    with pytest.raises(ValueError, match="regular_after"):
        CrossSellParams(regular_after=2.0)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 11), st.lists(st.integers(0, 11), max_size=6),
                          st.integers(0, 400)), max_size=60))
def test_copurchase_top_is_each_rows_largest_count(steps: list[tuple[int, list[int], int]]
                                                    ) -> None:
    # `top` lets suggest() skip a row without reading it: it must equal the row's largest
    # count through additions, pruning (max_neighbours 2 prunes rows above 6) and rebasing
    # (half-life 3 days rebases every ~50 days)
    model = CoPurchase(half_life_days=3.0, max_neighbours=2)
    model.grow(12)
    for item, others, since in sorted(steps, key=lambda s: s[2]):
        model.add_regular(item, sorted(set(others) - {item}), since)
        assert model.top == [max(row.values(), default=0.0) for row in model.pairs]
    # a state pickled before `top` existed gets it back on restore
    state = dict(model.__dict__)
    del state["top"]
    restored = CoPurchase.__new__(CoPurchase)
    restored.__setstate__(state)
    assert restored.top == model.top


def shared_stream() -> list[Order]:
    """24 customers, each buying from 4 favourites of 16 products every few days for 120
    days (day order). Even customers favour P0..P9, odd ones P6..P15, so two partitions
    split by parity meet the products in different orders."""
    rng = random.Random(7)
    orders: list[Order] = []
    for c in range(24):
        base = 0 if c % 2 == 0 else 6
        favourites = [f"P{base + k}" for k in rng.sample(range(10), 4)]
        day = float(c % 3)
        while day < 120:
            picks = sorted(set(rng.choices(favourites, k=3)))
            orders.append(order(f"C{c}", day, 10.0 * len(picks), picks,
                                quantity=float(rng.randint(1, 4))))
            day += rng.randint(3, 12)
    return sorted(orders, key=lambda o: o.occurred_at)


def learned(detector: CrossSellDetector, day: float) -> dict[str, Any]:
    """The population models by product id (indexes differ between instances), counts
    deflated to customers as of `day`."""
    ids, model = detector.product_ids, detector.model
    d = model.deflate(day)
    return {
        "customers": model.customers * d,
        "support": {ids[i]: s * d for i, s in enumerate(model.support) if s},
        "pairs": {(ids[a], ids[b]): n * d for a, row in enumerate(model.pairs)
                  for b, n in row.items()},
        "price": dict(zip(ids, detector.unit_price, strict=True)),
        "quantity": dict(zip(ids, detector.line_quantity, strict=True)),
    }


def json_trip(update: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(json.loads(json.dumps(update)))


def test_partitions_applying_each_others_updates_in_stream_order_learn_as_one() -> None:
    # each order's update reaches the other partition (through JSON) before the next
    # order: both apply every update in the order one detector learns the orders, so
    # both hold exactly its population models, and each finds what it finds for the
    # partition's customers. max_neighbours=2 prunes rows above 6 neighbours.
    params = {**HAND, "half_life_days": 30.0, "max_neighbours": 2, "min_lift": 1.0}
    whole = CrossSellDetector(**params)
    parts = [CrossSellDetector(**params), CrossSellDetector(**params)]
    outboxes = [Outbox(), Outbox()]
    for part, outbox in zip(parts, outboxes, strict=True):
        part.population_outbox = outbox
    engine, engines = Engine([whole]), [Engine([part]) for part in parts]
    expected: list[Finding] = []
    found: list[Finding] = []
    for event in shared_stream():
        expected += engine.observe(event)
        side = int(event.customer_id[1:]) % 2
        found += engines[side].observe(event)
        for *_, update in outboxes[side]:
            parts[1 - side].learn_population(json_trip(update))
        outboxes[side].clear()
    end = T0_DAY + 120
    assert learned(parts[0], end) == learned(parts[1], end) == learned(whole, end)
    assert all(d.model.origin == whole.model.origin for d in parts)
    assert found == expected and len(expected) > 5
    # the baskets stayed home: each partition holds only its own customers
    assert all(int(c[1:]) % 2 == side for side, d in enumerate(parts) for c in d.baskets)


def test_partitions_exchanging_updates_a_day_late_learn_the_same_copurchases() -> None:
    # as partitions do: each learns its own orders at once and the other's at the next
    # day boundary. The product indexes differ between them; the co-purchase counts, by
    # product id, are those one detector learns from every customer (sums: the order
    # of the updates only moves the last bits)
    params = {**HAND, "half_life_days": 30.0}
    whole = CrossSellDetector(**params)
    parts = [CrossSellDetector(**params), CrossSellDetector(**params)]
    outboxes = [Outbox(), Outbox()]
    for part, outbox in zip(parts, outboxes, strict=True):
        part.population_outbox = outbox
    engine, engines = Engine([whole]), [Engine([part]) for part in parts]
    stream = shared_stream()
    for day in range(120):
        for event in stream:
            if int(event.day - T0_DAY) == day:
                engine.observe(event)
                engines[int(event.customer_id[1:]) % 2].observe(event)
        made = [[json_trip(u) for *_, u in outbox] for outbox in outboxes]
        for side, part in enumerate(parts):
            for update in made[1 - side]:
                part.learn_population(update)
            outboxes[side].clear()
    assert parts[0].product_ids != parts[1].product_ids  # P0.. first, P6.. first
    end = T0_DAY + 120
    reference = learned(whole, end)
    for part in parts:
        mine = learned(part, end)
        assert mine["customers"] == pytest.approx(reference["customers"], rel=1e-9)
        assert mine["support"] == pytest.approx(reference["support"], rel=1e-9)
        assert mine["pairs"] == pytest.approx(reference["pairs"], rel=1e-9)
        assert len(mine["pairs"]) > 40
