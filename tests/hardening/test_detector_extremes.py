"""Hardening, input that crashes the detectors (issue 18): every value the contract
allows, up to the ceilings its bounds can be raised to, is learned without a math error,
and decayed state never runs backwards for a late event."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from detectors.streams import synthetic_stream  # type: ignore[import-not-found]

from sia.detectors.alignment_state import BINS, bin_of
from sia.detectors.config import load_detectors
from sia.detectors.copurchase import CoPurchase
from sia.detectors.switch_sell_state import ProductStats
from sia.engine.engine import FILE_CHUNK, Engine, replay
from sia.events.models import (
    LIMITS,
    ContractLimits,
    Event,
    Interaction,
    Opportunity,
    Order,
    Product,
    Return,
)

# the largest bounds SIA_EVENT_MAX_* may be set to, and the smallest positive floats
CEILINGS = {name: ContractLimits.model_fields[name].metadata for name in
            ("max_quantity", "max_price", "max_amount")}
QUANTITY, PRICE, AMOUNT = 1e12, 1e15, 1e18
TINY = 5e-324  # the smallest positive float: products of two underflow to 0


def test_the_ceilings_tested_here_are_the_settings_ceilings() -> None:
    for name, expected in [("max_quantity", QUANTITY), ("max_price", PRICE),
                           ("max_amount", AMOUNT)]:
        assert any(getattr(m, "le", None) == expected for m in CEILINGS[name]), name
    assert LIMITS.max_quantity <= QUANTITY and LIMITS.max_price <= PRICE


def lines(update: Callable[[random.Random], dict[str, Any]]) -> Callable[[Event], Event]:
    rnd = random.Random(5)

    def apply(event: Event) -> Event:
        if isinstance(event, Order | Return):
            return event.model_copy(update={"lines": [
                line.model_copy(update=update(rnd)) for line in event.lines]})
        if isinstance(event, Opportunity):
            return event.model_copy(update={"amount": rnd.choice([AMOUNT, 0.0, TINY, None])})
        if isinstance(event, Product):
            return event.model_copy(update={"list_price": rnd.choice([PRICE, 0.0, None]),
                                            "unit_cost": rnd.choice([PRICE, 0.0, None])})
        if isinstance(event, Interaction):
            return event.model_copy(update={"sentiment": rnd.choice([-1.0, 1.0, None])})
        return event
    return apply


EXTREMES = {
    "largest line": lines(lambda _: {"quantity": QUANTITY, "unit_price": PRICE,
                                     "list_price": PRICE, "unit_cost": PRICE}),
    "largest quantity, free": lines(lambda _: {"quantity": QUANTITY, "unit_price": 0.0,
                                               "list_price": 0.0, "unit_cost": 0.0}),
    # before: ZeroDivisionError in performance (unit * forecast underflowed to 0)
    "tiny quantity, dearest price": lines(lambda _: {"quantity": TINY, "unit_price": PRICE}),
    "tiny everything": lines(lambda _: {"quantity": TINY, "unit_price": TINY,
                                        "list_price": TINY, "unit_cost": TINY}),
    "mixed": lines(lambda r: {"quantity": r.choice([QUANTITY, TINY, 1.0, 1e-6]),
                              "unit_price": r.choice([PRICE, 0.0, TINY, 3.0]),
                              "list_price": r.choice([None, PRICE, 0.0]),
                              "unit_cost": r.choice([None, PRICE, 0.0, TINY])}),
}


@pytest.mark.parametrize("case", sorted(EXTREMES))
@pytest.mark.parametrize("chunk", [1, FILE_CHUNK])
def test_extreme_allowed_values_are_learned_without_a_math_error(case: str, chunk: int) -> None:
    events = [EXTREMES[case](e) for e in synthetic_stream()]
    engine = Engine(load_detectors(None), isolate=False)  # any exception fails the test
    findings = list(replay(engine, events, chunk=chunk))
    assert engine.observed == len(events)
    assert all(0.0 <= f.score <= 1.0 and math.isfinite(f.value) for f in findings)


def test_late_events_within_the_bounds_are_learned_without_a_math_error() -> None:
    mixed = EXTREMES["mixed"]
    events = []
    for i, event in enumerate(synthetic_stream()):
        event = mixed(event)
        if i % 7 == 3 and not isinstance(event, Product):  # almost a week late
            event = event.model_copy(update={
                "occurred_at": event.occurred_at - timedelta(days=6, hours=23)})
        events.append(event)
    rejects: list[str] = []
    engine = Engine(load_detectors(None), on_reject=lambda e, why: rejects.append(why))
    for _ in replay(engine, events):
        pass
    assert rejects == [] and engine.tick_failures == 0


def test_copurchase_counts_are_never_read_as_of_before_their_origin() -> None:
    model = CoPurchase(half_life_days=90.0, max_neighbours=5)
    model.weight(15_000.0)  # origin: the first day seen
    assert model.deflate(15_010.0) < 1.0
    # before: a late order read the counts inflated, decay run backwards
    assert model.deflate(14_995.0) == 1.0
    model.weight(15_000.0 + 25 * model.tau + 1)  # rebased: the origin moves on
    assert model.deflate(15_000.0) == 1.0


def test_product_stats_are_never_read_as_of_before_their_origin() -> None:
    stats = ProductStats(14.0, 90.0, 180.0, 5)
    stats.weights(15_000.0)
    stats.weights(15_000.0 + 2000)  # rebased (fast elapsed * rate > 50)
    assert stats.origin == 15_000.0 + 2000
    # before: exp(rate * elapsed) of a negative elapsed: OverflowError for one dated a
    # century before the origin, counts inflated for one a few days late
    assert stats.deflators(15_000.0 + 1995) == (1.0, 1.0, 1.0)
    assert stats.deflators(-36_500.0) == (1.0, 1.0, 1.0)
    assert all(f < 1.0 for f in stats.deflators(15_000.0 + 2010))


def test_value_bins_take_any_float() -> None:
    # before: math.log of inf (an order of 1e308 units) raised OverflowError
    assert bin_of(math.inf) == BINS - 1
    assert bin_of(1e305) == BINS - 1
    assert bin_of(math.nan) == 0
    assert bin_of(0.5) == 0
    assert bin_of(2.0) == 5
