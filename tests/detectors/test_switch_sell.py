"""Switch-sell by hand: the trend arithmetic, regular products, lapses, learned moves,
the three reasons and where the suggestion comes from, and the evaluator's judging.

Days are counted from T0 = 2024-01-01 00:00 UTC (day 19723 since the epoch); the
builders place events at T0 + day.
"""

from __future__ import annotations

import json
import math
import pickle
import random
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

import pytest

from sia.detectors.switch_sell import SwitchSellDetector, SwitchSellParams
from sia.detectors.switch_sell_state import LAPSED, CustomerProducts, ProductStats, bloom_mask
from sia.engine.engine import Engine
from sia.engine.population import Outbox
from sia.evaluation.judges.switch_sell import drop_episodes, judge
from sia.evaluation.outcomes import Outcomes
from sia.events.models import Event, Order, OrderLine, Product, Return
from sia.findings import Finding

from . import checks
from .builders import T0_DAY, at, customer, order

NO_DECAY = {"memory_half_life_days": 1e9}


def feed(engine: Engine, events: Iterable[Event]) -> list[Finding]:
    out: list[Finding] = []
    for event in sorted(events, key=lambda e: e.occurred_at):
        out.extend(engine.observe(event))
    return out


def product(product_id: str, name: str, *, discontinued: bool = False,
            substitutes: Sequence[str] = ()) -> Product:
    return Product(event_id=f"prd-{product_id}", occurred_at=at(-30), product_id=product_id,
                   name=name, discontinued=discontinued, substitutes=list(substitutes))


def ret(who: str, day: float, product_id: str) -> Return:
    return Return(event_id=f"r-{who}-{day}", occurred_at=at(day), customer_id=who,
                  order_id=f"R-{who}-{day}", currency="GBP",
                  lines=[OrderLine(product_id=product_id, quantity=1.0, unit_price=2.0)])


# -- the contract, run here too (the registry may load this detector after collection) --

@pytest.mark.parametrize("check", checks.CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_contract(check: Callable[[type[Any], Sequence[Event]], None],
                  stream: tuple[Event, ...]) -> None:
    check(SwitchSellDetector, stream)


# -- trend arithmetic ----------------------------------------------------------------------

def test_weekly_rates_and_decline_by_hand() -> None:
    """Half-lives 7 (fast) and 14 days (slow). Day 0: an order of X and Y; day 7: Y alone.

    On day 7 an increment of day 0 has decayed by f = 2^-1 = 0.5 (fast) and
    s = 2^-0.5 = 0.707107 (slow); rates per day are r_f = ln2/7, r_s = ln2/14; the
    correction for 7 days of observation divides by 1 - f = 0.5 and by 1 - s = 0.292893.
        X recent = 7 r_f * 0.5 * 1 / 0.5 = ln 2 = 0.693147 lines a week
        X usual  = 7 r_s * 0.707107 / 0.292893 = 0.346574 * 2.414214 = 0.836703
        all recent: lines 2 (day 0) + 1 (day 7, weight 1 on its own day)
                  = 7 r_f * (2 * 0.5 + 1) / 0.5 = 4 ln 2 = 2.772589
        all usual = 7 r_s * (2 * 0.707107 + 1) / 0.292893 = 0.346574 * 8.242641 = 2.856682
        decline(X) = 1 - (0.693147 / 0.836703) / (2.772589 / 2.856682)
                   = 1 - 0.828427 / 0.970563 = 1 - 0.853553 = 0.146447 (= (2 - sqrt 2) / 4)
    Y's unit price: 2.0, then 2.0 + 0.2 * (3.0 - 2.0) = 2.2.
    """
    stats = ProductStats(7.0, 14.0, 1e9, 5)
    x = stats.add("X", "paper chain kit", None)
    y = stats.add("Y", "vintage paper chain kit", None)
    quantity = [0.0, 0.0]
    stats.sell([x, y], [("X", 1.0, 1.0), ("Y", 2.0, 4.0)], 0.0, quantity)
    stats.sell([y], [("Y", 3.0, 9.0)], 7.0, quantity)
    recent, usual, all_recent, all_usual = stats.weekly(x, 7.0)
    assert recent == pytest.approx(math.log(2), rel=1e-9)
    assert usual == pytest.approx(0.836703, abs=1e-6)
    assert all_recent == pytest.approx(4 * math.log(2), rel=1e-9)
    assert all_usual == pytest.approx(2.856682, abs=1e-6)
    assert 1 - (recent / usual) / (all_recent / all_usual) == pytest.approx(
        (2 - math.sqrt(2)) / 4, rel=1e-9)
    assert stats.price[y] == pytest.approx(2.2)
    assert quantity == [1.0, pytest.approx(4.0 + 0.2 * (9.0 - 4.0))]


def test_rebase_keeps_the_rates() -> None:
    """Rebasing (after 50 / r_f days) rescales the inflated counts; rates read the same."""
    a = ProductStats(1.0, 10.0, 100.0, 5)
    b = ProductStats(1.0, 10.0, 100.0, 5)
    for stats in (a, b):
        stats.add("X", "x", None)
    a.sell([0], [("X", 1.0, 1.0)], 0.0, [0.0])
    b.sell([0], [("X", 1.0, 1.0)], 0.0, [0.0])
    a.sell([0], [("X", 1.0, 1.0)], 80.0, [0.0])  # 80 * ln2 > 50: a rebases here
    b.sell([0], [("X", 1.0, 1.0)], 20.0, [0.0])
    b.sell([0], [("X", 1.0, 1.0)], 80.0, [0.0])  # 60 days after its last rebase... also rebases
    assert a.origin == 80.0
    c = ProductStats(1.0, 10.0, 100.0, 5)
    c.add("X", "x", None)
    c.sell([0], [("X", 1.0, 1.0)], 0.0, [0.0])
    c.sell([0], [("X", 1.0, 1.0)], 80.0, [0.0])
    assert a.weekly(0, 90.0) == pytest.approx(c.weekly(0, 90.0), rel=1e-9)
    assert all(math.isfinite(v) for v in b.weekly(0, 500.0))


# -- a customer's products ----------------------------------------------------------------

def test_bloom_remembers_and_layers_grow() -> None:
    state = CustomerProducts()
    masks = [bloom_mask(i) for i in range(100)]
    assert all(bin(m).count("1") in (1, 2, 3) for m in masks)
    for m in masks[:48]:
        state.remember(m)
    assert len(state.bloom) == 1 and state.bloom_items == 48
    state.remember(masks[48])  # the 49th product opens a second layer
    assert len(state.bloom) == 2 and state.bloom_items == 1
    assert all(state.seen(m) for m in masks[:49])
    clone = pickle.loads(pickle.dumps(state))
    assert clone.bloom == state.bloom and clone.bloom_items == 1


def test_regular_products_lapses_and_moves_by_hand() -> None:
    """A regular (2 orders), missing for more than lapse_days (60) while the customer still
    orders: lapsed. B, new and alike (shares "paper", "chain", "kit"; price 2.2 vs 2.0),
    arrived in an order without A on day 20: when A lapses, one move A -> B is learned.

    Day 0: A, C   -> A and C remembered (first purchase), nothing regular
    Day 10: A     -> A enters a slot with 2 orders: regular buyers of A = 1
    Day 20: B, C  -> B new and alike A, A missing: pending (A, B, day 20); C regular
    Day 71: C     -> 61 days without A > 60: A lapsed, stopped = 1, moves[A][B] = 1
    """
    detector = SwitchSellDetector(**NO_DECAY)
    engine = Engine([detector])
    feed(engine, [product("A", "retro paper chain kit"), product("B", "vintage paper chain kit"),
                  product("C", "kraft gift tags")])

    def line(p: str, price: float) -> OrderLine:
        return OrderLine(product_id=p, quantity=1.0, unit_price=price)

    orders = [(0, [line("A", 2.0), line("C", 1.0)]), (10, [line("A", 2.0)]),
              (20, [line("B", 2.2), line("C", 1.0)]), (71, [line("C", 1.0)])]
    for day, lines in orders:
        feed(engine, [Order(event_id=f"o{day}", occurred_at=at(day + 0.5), customer_id="K",
                            order_id=f"SO{day}", currency="GBP", lines=lines)])
        state = detector.customers["K"]
        if day == 10:
            assert state.products == [0] and state.counts == [2]
            assert state.last_days == [int(T0_DAY) + 10]
        if day == 20:
            assert state.pending == [(0, 2, int(T0_DAY) + 20)]  # indexes: A 0, C 1, B 2
    stats = detector.stats
    a, b = stats.index["A"], stats.index["B"]
    assert stats.memory(a, T0_DAY + 71) == pytest.approx((1.0, 1.0))
    assert state.flags[state.products.index(a)] & LAPSED
    assert stats.movers(a, T0_DAY + 71) == [(b, pytest.approx(1.0))]
    assert state.pending == []
    assert state.counts[state.products.index(stats.index["C"])] == 3


def test_slots_make_room_only_for_products_dropped() -> None:
    state = CustomerProducts()
    assert state.add_slot(1, 2, 100, 2, 60.0) and state.add_slot(2, 2, 130, 2, 60.0)
    assert not state.add_slot(3, 2, 150, 2, 60.0)  # product 1 bought 50 days ago: kept
    assert state.add_slot(3, 2, 170, 2, 60.0)  # 70 days: product 1 makes room
    assert state.products == [2, 3]


def test_customer_state_pickles_small() -> None:
    detector = SwitchSellDetector()
    engine = Engine([detector])
    feed(engine, [order("K", d, 30.0, ("A", "B", "C")) for d in (0, 7, 14)])
    state = detector.customers["K"]
    blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    assert len(blob) < 200
    clone = pickle.loads(blob)
    assert (clone.products, clone.counts, clone.orders) == ([0, 1, 2], [3, 3, 3], 3)


# -- findings ------------------------------------------------------------------------------

def discontinued_story() -> list[Event]:
    """D1 is discontinued, D2 its catalogue substitute; K buys D1 on days 0, 10, 20, 30."""
    events: list[Event] = [
        product("D1", "retro paper chain kit", discontinued=True, substitutes=["D2"]),
        product("D2", "vintage paper chain kit"), customer("K", name="Acme")]
    events += [order("K", d + 0.5, 24.0, ("D1",), quantity=12.0) for d in (0, 10, 20, 30)]
    return events


def test_discontinued_product_with_a_catalogue_substitute() -> None:
    """Silent on the first two orders of D1; on the third (min_orders = 3) the catalogue
    says it is discontinued: score 1 - (1 - 0) * (1 - 0.9) = 0.9 (no buyer has stopped
    yet, so the abandonment term is 0). The unit price is 24 / 12 = £2.00 a unit; the
    value is the typical line, 2.00 * 12 = £24.00. Then recheck_days (30) keeps it quiet
    on day 30 (30.5 - 20.5 = 10 days later)."""
    findings = feed(Engine([SwitchSellDetector()]), discontinued_story())
    assert len(findings) == 1
    f = findings[0]
    assert f.occurred_at == at(20.5)
    assert (f.kind, f.subject_id, f.score) == ("discontinued", "K", 0.9)
    assert f.title == ("Move Acme (K) from Retro Paper Chain Kit (D1) to "
                       "Vintage Paper Chain Kit (D2)")
    assert f.explanation == (
        "Acme (K) bought Retro Paper Chain Kit (D1) in 3 orders (last on 2024-01-21); "
        "it is discontinued in the catalogue. The catalogue lists Vintage Paper Chain Kit "
        "(D2) as its substitute.")
    assert f.action.startswith("Offer Vintage Paper Chain Kit (D2) in place of Retro Paper "
                               "Chain Kit (D1) on their next order")
    assert f.value == 24.0
    assert f.dedup_key == "switch_sell:K:D1"
    assert f.facts["to_product_id"] == "D2" and f.facts["target_source"] == "catalogue"


def learned_story() -> list[Event]:
    """M1..M4 buy the blue mug (weekly, days 0-56), then the green one (days 63-203);
    N starts on the blue mug on day 150 (orders on days 150, 157, 164).

    With no decay of the buyer counts: regular buyers of the blue mug 4 + N = 5, stopped 4
    (each lapses on its first order more than 60 days after day 56: day 119 or later);
    moves blue -> green 4 (each was pending since day 63).
    """
    events: list[Event] = [product("U1", "blue enamel camping mug"),
                           product("U2", "green enamel camping mug"), customer("N", name="Nook")]
    for i in range(1, 5):
        events += [order(f"M{i}", d + 0.1 * i, 30.0, ("U1" if d < 60 else "U2",),
                         quantity=10.0) for d in range(0, 210, 7)]
    events += [order("N", d + 0.5, 30.0, ("U1",), quantity=10.0) for d in (150, 157, 164)]
    return events


def test_abandoned_product_moves_to_the_learned_substitute() -> None:
    """On N's third order of U1 (day 164): 4 of its 5 regular buyers stopped (80% >= 25%,
    5 >= min_buyers 3). U1's share of sales is down (decline 0.5549) but it sold about
    1.4 lines a week usually, under min_weekly_lines (2): not a "declining" reason. Score:
    the Wilson lower bound of 4 stopped in 5 = 0.375528 (see test_cross_sell)."""
    detector = SwitchSellDetector(min_buyers=3.0, **NO_DECAY)
    findings = feed(Engine([detector]), learned_story())
    assert [f.occurred_at for f in findings] == [at(164.5)]
    f = findings[0]
    assert f.facts["reasons"] == ["abandoned"] and f.kind == "abandoned"
    assert f.score == pytest.approx(0.375528, abs=1e-4)
    assert f.facts["regular_buyers"] == 5.0 and f.facts["stopped"] == 4.0
    assert f.facts["movers"] == 4.0 and f.facts["to_product_id"] == "U2"
    assert f.facts["target_source"] == "learned"
    assert f.explanation == (
        "Nook (N) bought Blue Enamel Camping Mug (U1) in 3 orders (last on 2024-06-13); 80% "
        "of the customers who bought it regularly have stopped buying it (about 4 of 5, "
        "recent buyers counting more). 4 customers who dropped it moved to Green Enamel "
        "Camping Mug (U2) (100% of those who stopped).")


def test_too_few_buyers_is_silent() -> None:
    """min_buyers 10 (the default): 5 regular buyers are not enough, and the decline is
    below min_weekly_lines (above): nothing to say."""
    assert feed(Engine([SwitchSellDetector(**NO_DECAY)]), learned_story()) == []


def test_returns_reason_needs_two_returns_and_a_fifth_of_the_orders() -> None:
    """K buys R1 on days 0, 10, 20, 30 and returns it on days 12 and 22. On the second
    return (day 22) R1 has 3 orders and 2 returns: 2 >= min_returns and 2 >= 0.2 * 3.
    Score: 0.5 * min(2 / 3, 1) = 0.333333 (nobody stopped, no decline yet: history < 56
    days; returns weigh half, the weakest reason measured).
    The look-alike R2 (shares "paper", "chain", "kit") sells on days 0-30 to P."""
    events: list[Event] = [product("R1", "retro paper chain kit"),
                           product("R2", "vintage paper chain kit")]
    events += [order("K", d + 0.5, 20.0, ("R1",), quantity=10.0) for d in (0, 10, 20, 30)]
    events += [order("P", d + 0.4, 22.0, ("R2",), quantity=10.0) for d in range(0, 31, 2)]
    events += [ret("K", 12.6, "R1"), ret("K", 22.6, "R1")]
    findings = feed(Engine([SwitchSellDetector()]), events)
    assert findings[0].occurred_at == at(22.6)
    assert findings[0].kind == "returns"
    assert findings[0].score == pytest.approx(1 / 3, abs=1e-4)
    assert findings[0].facts["target_source"] == "look-alike"
    assert findings[0].facts["to_product_id"] == "R2"
    assert "this customer returned it 2 times in 3 orders" in findings[0].explanation
    assert findings[0].evidence == ("r-K-22.6",)
    quiet = SwitchSellDetector(min_return_share=0.7)  # 2 < 0.7 * 3
    assert feed(Engine([quiet]), events) == []


def test_bare_arithmetic_learns_what_the_engine_learns() -> None:
    events = learned_story()
    engine_side = SwitchSellDetector(**NO_DECAY)
    feed(Engine([engine_side]), events)
    bare = SwitchSellDetector(**NO_DECAY)
    loop = bare.bare_arithmetic(sorted(events, key=lambda e: e.occurred_at))
    assert loop is not None
    loop()
    assert bare.stats.regular == engine_side.stats.regular
    assert bare.stats.lapsed == engine_side.stats.lapsed
    assert bare.stats.moves == engine_side.stats.moves


def test_params_ranges_name_the_field() -> None:
    for key, value in (("min_orders", 1), ("min_decline", 1.0), ("lapse_days", 0.5),
                       ("fast_half_life_days", 200.0), ("max_slots", 1),
                       ("min_return_share", 1.5)):
        with pytest.raises(ValueError, match=key):
            SwitchSellParams(**{key: value})


# -- the evaluator -------------------------------------------------------------------------

def test_judge_by_hand() -> None:
    """K orders A on days 0, 10, 20 and then only C on days 40 and 50; B on day 45."""
    def o(day: float, products: tuple[str, ...]) -> Order:
        return order("K", day, 10.0, products)

    out = Outcomes.from_events([o(0, ("A",)), o(10, ("A",)), o(20, ("A",)), o(40, ("C",)),
                                o(45, ("B",)), o(50, ("C",)), order("Z", 200, 1.0, ("Z",))])
    d = T0_DAY
    # alert on day 20: A never again (dropped), B bought on day 45: lead = first order
    # without A, day 40 -> 20 days
    assert judge(out, "K", "A", "B", d + 20, 90) == (True, True, pytest.approx(20.0), True)
    # alert on day 5: A bought again on day 10, B on day 45 within 90: right by B, lead
    # is 40 (the order of day 10 holds A, so it is no sign)
    assert judge(out, "K", "A", "B", d + 5, 90) == (False, True, pytest.approx(40.0), True)
    # with a 30-day horizon from day 5: A bought again, B too late: wrong
    assert judge(out, "K", "A", "B", d + 5, 30)[:2] == (False, False)
    # drop episodes: A's last purchase (day 20, its third) followed by orders, no A
    assert drop_episodes(out, 90) == [("K", "A", pytest.approx(d + 20))]


def test_evaluator_end_to_end_on_the_learned_story() -> None:
    from sia.evaluation.evaluate import evaluate
    from sia.policy import Policy, PolicyConfig

    events = sorted(learned_story(), key=lambda e: e.occurred_at)
    detector = SwitchSellDetector(min_buyers=3.0, **NO_DECAY)
    policy = Policy(PolicyConfig(cooldown_days={"default": 90.0}))
    report = evaluate(events, [detector], policy, horizon_days=30.0)["detectors"]["switch_sell"]
    # N's alert on day 164: N orders nothing afterwards, the data ends on day 203.9 >= 194.5
    assert report["alerts"] == 1 and report["precision"] == 1.0
    assert report["baseline"]["alerts"] <= 1
    assert set(report) >= {"recall", "median_lead_days", "alerts_per_1k_customers_per_week",
                           "unjudged", "baseline", "base_rate"}


def test_time_to_day() -> None:
    assert at(1.5) - at(0) == timedelta(days=1.5)


# -- population models shared by partitions ------------------------------------------------

SHARED_PRODUCTS = {  # id: (name, unit price, category of its lines)
    "U1": ("blue enamel camping mug", 4.0, None), "U2": ("green enamel camping mug", 4.5, None),
    "U3": ("red enamel camping mug", 3.5, None), "T1": ("kraft paper gift tags", 1.0, "tags"),
    "T2": ("white paper gift tags", 1.2, "tags"), "K1": ("retro paper chain kit", 2.0, None),
    "K2": ("vintage paper chain kit", 2.2, None), "D1": ("lunch box dinosaur", 6.0, None),
    "J1": ("jam jar candle", 3.0, "home"), "W1": ("tea towel stripes", 2.5, "home"),
}


def shared_stream() -> list[Event]:
    """20 customers ordering 2-4 of their favourites every few days for 200 days (day
    order), with the catalogue first. Customers holding the blue mug U1 drop it on day
    70 for the green one (even customers) or the red one (odd ones), two more take it up
    on day 150 (and are told where the others went); D1 is discontinued,
    its catalogue substitute D9 never sold; some orders name a product twice, some
    customers return K1. Even customers favour the first products, odd ones the last, so
    two partitions split by parity meet the products in different orders."""
    rng = random.Random(11)
    events: list[Event] = [
        Product(event_id=f"prd-{p}", occurred_at=at(-30), product_id=p, name=name,
                discontinued=p == "D1", substitutes=["D9"] if p == "D1" else [])
        for p, (name, _, _) in SHARED_PRODUCTS.items()]
    events.append(product("D9", "lunch box robot"))
    pool = list(SHARED_PRODUCTS)
    for c in range(22):
        favourites = rng.sample(pool[1:7] if c % 2 == 0 else pool[3:], 3)
        favourites.append("U1" if c % 3 == 0 or c >= 20 else rng.choice(pool))
        day = float(c % 4) + 0.1 * c if c < 20 else 150.0 + c - 20
        while day < 200:
            picks = [p if p != "U1" or day < 70 or c >= 20 else ("U2" if c % 2 == 0 else "U3")
                     for p in rng.sample(favourites, rng.randint(2, 4))]
            if rng.random() < 0.1:
                picks.append(picks[0])  # a product named twice: its first line counts
            lines = [OrderLine(product_id=p, quantity=float(rng.randint(1, 6)),
                               unit_price=SHARED_PRODUCTS[p][1],
                               category=SHARED_PRODUCTS[p][2]) for p in picks]
            events.append(Order(event_id=f"o-C{c}-{day}", occurred_at=at(day),
                                customer_id=f"C{c}", order_id=f"SO-C{c}-{day}",
                                currency="GBP", lines=lines))
            if "K1" in picks and rng.random() < 0.3:
                events.append(ret(f"C{c}", day + 0.5, "K1"))
            day += rng.randint(3, 12)
    return sorted(events, key=lambda e: e.occurred_at)


def learned(detector: SwitchSellDetector, day: float) -> dict[str, Any]:
    """The population models by product id (indexes and name-word numbers differ
    between instances), decayed counts deflated to `day`."""
    stats = detector.stats
    ids = stats.ids
    f, s, m = stats.deflators(day)
    words = {token: word for word, token in stats.vocabulary.items()}
    return {
        "total": (stats.total_fast * f, stats.total_slow * s, stats.first_total_day),
        "fast": {ids[i]: x * f for i, x in enumerate(stats.fast)},
        "slow": {ids[i]: x * s for i, x in enumerate(stats.slow)},
        "first_day": dict(zip(ids, stats.first_day, strict=True)),
        "price": dict(zip(ids, stats.price, strict=True)),
        "quantity": dict(zip(ids, detector.quantity, strict=True)),
        "regular": {ids[i]: x * m for i, x in enumerate(stats.regular)},
        "lapsed": {ids[i]: x * m for i, x in enumerate(stats.lapsed)},
        "returned": dict(zip(ids, stats.returned, strict=True)),
        "moves": {(ids[a], ids[b]): n * m for a, row in enumerate(stats.moves)
                  for b, n in row.items()},
        "words": {ids[i]: {words[t] for t in tokens} for i, tokens in enumerate(stats.tokens)},
        "category": dict(zip(ids, stats.category, strict=True)),
    }


def json_trip(update: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(json.loads(json.dumps(update)))


def split_in_two() -> tuple[SwitchSellDetector, list[SwitchSellDetector], list[list[Any]]]:
    params = SwitchSellDetector.unit_test_params()
    whole = SwitchSellDetector(**params)
    parts = [SwitchSellDetector(**params), SwitchSellDetector(**params)]
    outboxes = [Outbox(), Outbox()]
    for part, outbox in zip(parts, outboxes, strict=True):
        part.population_outbox = outbox
    return whole, parts, outboxes


def test_partitions_applying_each_others_updates_in_stream_order_learn_as_one() -> None:
    # each order's (or return's) updates reach the other partition (through JSON) before
    # the next event: both apply every update in the order one detector learns the
    # events, so both hold exactly its population models, and each finds what it finds
    # for the partition's customers
    whole, parts, outboxes = split_in_two()
    engine, engines = Engine([whole]), [Engine([part]) for part in parts]
    expected: list[Finding] = []
    found: list[Finding] = []
    kinds: set[str] = set()
    for event in shared_stream():
        expected += engine.observe(event)
        if not isinstance(event, Order | Return):
            for part_engine in engines:  # reference data reaches every partition
                part_engine.observe(event)
            continue
        side = int(event.customer_id[1:]) % 2
        found += engines[side].observe(event)
        for *_, update in outboxes[side]:
            kinds.add(update[0])
            parts[1 - side].learn_population(json_trip(update))
        outboxes[side].clear()
    assert kinds == {"order", "return", "product"}
    end = T0_DAY + 200
    reference = learned(whole, end)
    assert learned(parts[0], end) == learned(parts[1], end) == reference
    # the product D9 only the catalogue names, and moves learned in both halves
    assert reference["words"]["D9"] == {"LUNCH", "BOX", "ROBOT"}
    assert reference["category"]["T1"] == "tags"
    assert reference["moves"][("U1", "U2")] > 0 and reference["moves"][("U1", "U3")] > 0
    assert found == expected
    assert {f.facts["target_source"] for f in expected} >= {"catalogue", "learned"}
    # the customers' products stayed home: each partition holds only its own customers
    assert all(int(c[1:]) % 2 == side for side, d in enumerate(parts) for c in d.customers)


def test_partitions_exchanging_updates_a_day_late_learn_the_same_counts() -> None:
    # as partitions do: each learns its own events at once and the other's at the next
    # day boundary, with its own product indexes. The counts, by product id, are those
    # one detector learns from every customer (sums: the order of the updates only moves
    # the last bits; prices are constant per product, so the averages agree too)
    whole, parts, outboxes = split_in_two()
    engine, engines = Engine([whole]), [Engine([part]) for part in parts]
    stream = shared_stream()
    for day in range(-30, 200):
        for event in stream:
            if int(event.day - T0_DAY + 30) - 30 == day:
                engine.observe(event)
                if isinstance(event, Order | Return):
                    engines[int(event.customer_id[1:]) % 2].observe(event)
                else:
                    for part_engine in engines:
                        part_engine.observe(event)
        made = [[json_trip(u) for *_, u in outbox] for outbox in outboxes]
        for side, part in enumerate(parts):
            for update in made[1 - side]:
                part.learn_population(update)
            outboxes[side].clear()
    assert parts[0].stats.ids != parts[1].stats.ids  # met in a different order
    end = T0_DAY + 200
    reference = learned(whole, end)
    for part in parts:
        mine = learned(part, end)
        for key in ("fast", "slow", "regular", "lapsed", "moves", "price"):
            assert mine[key] == pytest.approx(reference[key], rel=1e-9), key
        assert mine["total"][:2] == pytest.approx(reference["total"][:2], rel=1e-9)
        for key in ("returned", "words", "category"):
            assert mine[key] == reference[key], key
        assert len(mine["moves"]) >= 2 and sum(mine["lapsed"].values()) > 5
