"""Switch-sell: move a customer from a product that is going away to a better fit.

Learns online, across all customers:

- each product's sales trend: fast and slow decayed counts of the order lines naming
  it, against the same counts for all products, so "its share of sales fell 64%" holds
  whatever the season does to the whole catalogue;
- how many of its regular buyers (two orders or more) stopped buying it for
  `lapse_days` while still ordering other things;
- substitutes: when a regular product A is missing from an order that brings a product
  B new to the customer, alike in category or name and price, and A then lapses, the
  customer "moved from A to B"; the strongest few B are kept per A.

and per customer, in a few hundred bytes, the products they buy regularly (with their
returns). When a customer orders (or returns) a product they bought in `min_orders`
orders, and that product is discontinued in the catalogue, declining across customers,
being dropped by its regular buyers, or returned by this customer repeatedly, the
detector names the product to move them to: a catalogue substitute, else the product
most customers who dropped it moved to, else the best-selling look-alike that is not
declining (one the customer has tried before first: on the online retail data that
raised the share of suggestions taken from 26% to 30%). At most one alert per customer
every `recheck_days`.

Population models (learned across customers, shared by the partitions of a split
stream): the product table (names and categories, for look-alikes), each product's
trend counts, typical unit price and line quantity, its regular buyers, lapses, returns
and learned moves. Every order makes one update, (ORDER, day, lines, products new here
with their name and category, products that became regular, lapsed, moves), by product
id; a return naming known products makes a RETURN update, and a catalogue substitute
first met when suggesting it a PRODUCT update. The customer's products (slots, Bloom
filter, pending moves) stay in their partition, which decides what became regular,
lapsed or moved; each detector instance maps ids to its own product indexes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any, cast

from sia.detectors.base import Context, Detector, Params, register, threshold
from sia.detectors.copurchase import wilson_lower
from sia.detectors.money import day_label, money
from sia.detectors.rhythm import DAY
from sia.detectors.switch_sell_state import (
    LAPSED,
    CustomerProducts,
    ProductStats,
    any_layer,
    same_kind,
)
from sia.events.models import Event, Order, Product, Return
from sia.findings import Finding, Severity

_PRODUCT, _PRICE = itemgetter(0), itemgetter(1)  # of a line: (product id, price, quantity)
# population updates (see `SwitchSellDetector.learn_population`)
ORDER = "order"  # (ORDER, day, lines, [(product id, name, category) new here],
# [product ids now regular], [lapsed product ids], [dropped id, taken id, ...]): an order
RETURN = "return"  # (RETURN, [product ids]): the lines of a return naming known products
PRODUCT = "product"  # (PRODUCT, product id, name, category): a catalogue substitute

@dataclasses.dataclass(frozen=True)
class SwitchSellParams(Params):
    """Thresholds of the switch-sell detector."""

    min_orders: int = threshold(
        3, "Orders of a product by the customer before their buying of it is judged.",
        low=2, unit="orders", fewer_alerts="higher")
    regular_after: int = threshold(
        2, "Orders of a product before the customer counts as a regular buyer of it.",
        low=2, unit="orders", learning=True)
    lapse_days: float = threshold(
        60.0, "A regular product not ordered for this many days while the customer keeps "
        "ordering other things counts as dropped.",
        low=1, high=730, unit="days", learning=True)
    min_decline: float = threshold(
        0.3, "'Declining' product: its recent share of all sales is at least this share below "
        "usual (0.3: 30% below). Higher: fewer alerts.",
        low=0, high=1, low_open=True, high_open=True, unit="share 0..1", fewer_alerts="higher")
    fast_half_life_days: float = threshold(
        21.0, "What 'recent' sales means: a sale counts half after this many days. Must be "
        "below slow_half_life_days.",
        low=0, low_open=True, unit="days", learning=True)
    slow_half_life_days: float = threshold(
        180.0, "What 'usual' sales means: a sale counts half after this many days.",
        low=0, low_open=True, unit="days", learning=True)
    min_history_days: float = threshold(
        56.0, "A product's sales trend is judged only after it has been on sale this long.",
        low=0, unit="days", fewer_alerts="higher")
    min_weekly_lines: float = threshold(
        2.0, "... and only if it usually sells in at least this many order lines a week.",
        low=0, unit="order lines a week", fewer_alerts="higher")
    min_lapse_share: float = threshold(
        0.25, "'Abandoned' product: at least this share of its regular buyers stopped buying "
        "it.",
        low=0, high=1, low_open=True, unit="share 0..1", fewer_alerts="higher")
    min_buyers: float = threshold(
        10.0, "... out of at least this many regular buyers (recent buyers count more).",
        low=1, unit="customers", fewer_alerts="higher")
    min_returns: int = threshold(
        2, "'Returns' alert: the customer returned the product at least this often ...",
        low=1, unit="returns", fewer_alerts="higher")
    min_return_share: float = threshold(
        0.2, "... and in at least this share of their orders of it.",
        low=0, high=1, unit="share 0..1", fewer_alerts="higher")
    min_switchers: float = threshold(
        2.0, "Customers seen moving from one product to another before the second is named as "
        "a substitute for the first.",
        low=1, unit="customers", fewer_alerts="higher")
    switch_window_days: float = threshold(
        90.0, "A customer starting a look-alike product counts as moving to it if the old "
        "product lapses within this many days.",
        low=0, low_open=True, unit="days", learning=True)
    min_shared_words: int = threshold(
        2, "Words of the product name a look-alike must share (one fewer in the same "
        "category).",
        low=1, unit="words", learning=True)
    max_price_ratio: float = threshold(
        2.0, "Look-alikes cost at most this many times each other.",
        low=1, unit="times", learning=True)
    recheck_days: float = threshold(
        30.0, "At most one switch-sell alert per customer this often.",
        low=0, unit="days", fewer_alerts="higher")
    memory_half_life_days: float = threshold(
        365.0, "Memory of regular buyers, lapses and moves: each counts half after this many "
        "days.",
        low=0, low_open=True, unit="days", learning=True)
    max_slots: int = threshold(
        12, "Regular products tracked per customer.",
        low=2, high=255, unit="products", learning=True)
    max_substitutes: int = threshold(
        5, "Learned substitutes kept per product.",
        low=1, high=100, unit="products", learning=True)

    def check(self) -> None:
        """Rules across thresholds (each one's own range is declared with it)."""
        self.require(self.fast_half_life_days < self.slow_half_life_days,
                     "fast_half_life_days must be below slow_half_life_days, got "
                     f"{self.fast_half_life_days} and {self.slow_half_life_days}")


@dataclasses.dataclass(frozen=True, slots=True)
class Case:
    """Why a customer should move off a product, and where to."""

    product: int
    slot: int
    reasons: tuple[str, ...]
    score: float
    target: int
    target_source: str  # "catalogue", "learned" or "look-alike"
    decline: float
    recent_weekly: float
    usual_weekly: float
    market_change: float
    regular_buyers: float
    stopped: float
    movers: float


@register
class SwitchSellDetector(Detector[SwitchSellParams]):
    """Customers still buying a product that is going away: offer the better fit.

    Learns each product's recent against usual share of sales, how many regular buyers
    dropped it, and which products customers moved to from it (substitutes)."""

    name = "switch_sell"
    params_type = SwitchSellParams
    handles = frozenset({"order", "return"})
    warm_up_hint = ("speaks about a customer's product after min_orders orders of it, once "
                    "its trend or its buyers' lapses are learned")
    global_params = frozenset({"regular_after", "lapse_days", "fast_half_life_days",
                               "slow_half_life_days", "switch_window_days",
                               "min_shared_words", "max_price_ratio",
                               "memory_half_life_days", "max_slots", "max_substitutes"})
    shares_population = True
    _made: tuple[object, list[int]] | None = None  # the lines of the update being made

    def __init__(self, **thresholds: object) -> None:
        super().__init__(**thresholds)
        p = self.params
        self.stats = ProductStats(p.fast_half_life_days, p.slow_half_life_days,
                                  p.memory_half_life_days, p.max_substitutes)
        self.customers: dict[str, CustomerProducts] = {}
        self.quantity: list[float] = []  # per product, EW quantity of a line
        self.currency: str | None = None

    @classmethod
    def unit_test_params(cls) -> dict[str, object]:
        """Small supports so short test streams speak."""
        return {"min_buyers": 3.0, "min_weekly_lines": 0.5, "min_history_days": 28.0,
                "min_switchers": 1.0, "recheck_days": 0.0}

    def customer_state(self, customer_id: str) -> object | None:
        """The customer's regular products."""
        return self.customers.get(customer_id)

    # learning
    def observe(self, event: Event, ctx: Context) -> list[Finding]:
        """Learn from orders and returns; maybe suggest a switch for this customer."""
        if not isinstance(event, Order | Return):
            return []
        if event.currency:
            self.currency = event.currency
        day = event.day
        lines = event.priced_lines
        p = self.params_for(ctx, event.customer_id)
        if isinstance(event, Return):
            state, touched = self.learn_return(event.customer_id, lines)
        else:
            products = ctx.catalog.products

            def describe(product_id: str) -> tuple[str | None, str | None]:
                ref = products.get(product_id)
                category = next((x.category for x in event.lines
                                 if x.product_id == product_id and x.category), None)
                return (ref.name if ref else None,
                        category or (ref.category if ref else None))

            state, touched = self.learn_order(event.customer_id, day, lines, p, describe)
        if state.orders < 2 or day - state.checked_at < p.recheck_days:
            return []
        case = self._best_case(state, touched, day, p, ctx)
        if case is None:
            return []
        state.checked_at = day
        return [self._finding(event, state, case, day, ctx)]

    def _add(self, product_id: str, name: str | None, category: str | None) -> int:
        """Index a product new to this instance."""
        self.quantity.append(0.0)
        return self.stats.add(product_id, name, category)

    def _known(self, product_id: str) -> int:
        """This instance's index of a product an update names (its description came in an
        earlier update, so the fallback only guards against a broken stream)."""
        i = self.stats.index.get(product_id)
        return self._add(product_id, None, None) if i is None else i

    def learn_order(self, customer_id: str, day: float, lines: Sequence[tuple[str, float, float]],
                    p: SwitchSellParams,
                    describe: Callable[[str], tuple[str | None, str | None]]
                    ) -> tuple[CustomerProducts, list[int]]:
        """Learning arithmetic of one order of (product, unit price, quantity) lines;
        `describe` gives a new product's name and category. Returns the customer's state
        and the products of the order they hold slots for.

        The customer's products learn here, and decide which products became regular,
        lapsed or were moved to; the population models learn all of it from the one
        update the order makes (`learn_population`), here at once, and in every
        partition. So the price a new product has once the order is learned is worked
        out here (`_switches`), as `ProductStats.sell` will make it."""
        stats = self.stats
        index = stats.index
        found = list(map(index.get, map(_PRODUCT, lines)))
        described: list[tuple[str, str | None, str | None]] = []
        if None in found:  # products new to this instance, indexed in line order
            for n, i in enumerate(found):
                if i is None:
                    product_id = lines[n][0]
                    i = index.get(product_id)  # from an earlier line of the order
                    if i is None:
                        name, category = describe(product_id)
                        i = self._add(product_id, name, category)
                        described.append((product_id, name, category))
                    found[n] = i
        indexes = cast("list[int]", found)
        distinct = dict(zip(indexes, map(_PRICE, lines), strict=True))
        if len(distinct) < len(lines):  # a product comes back: its first line counts
            firsts: dict[int, tuple[str, float, float]] = {}
            for i, line in zip(indexes, lines, strict=True):
                if i not in firsts:
                    firsts[i] = line
            distinct = {i: line[1] for i, line in firsts.items()}
            lines = list(firsts.values())
        products = list(distinct)
        ids = stats.ids
        regular: list[str] = []
        lapsed: list[str] = []
        moves: list[str] = []  # dropped product, product taken up, ...
        state = self.customers.get(customer_id)
        if state is None:
            state = self.customers[customer_id] = CustomerProducts()
        state.orders += 1
        today = int(day)
        # regular products missing for lapse_days: the customer dropped them
        slots, counts, last_days, flags = (state.products, state.counts, state.last_days,
                                           state.flags)
        for k in range(len(slots)):
            if (flags[k] & LAPSED or today - last_days[k] <= p.lapse_days
                    or counts[k] < p.regular_after or slots[k] in distinct):
                continue
            a = slots[k]
            flags[k] |= LAPSED
            lapsed.append(ids[a])
            if state.pending:
                for dropped, taken, _ in state.pending:
                    if dropped == a:
                        moves += (ids[a], ids[taken])
                state.pending = [x for x in state.pending if x[0] != a]
        if state.pending:
            state.pending = [x for x in state.pending
                             if today - x[2] <= p.switch_window_days]
        new: list[int] = []
        touched: list[int] = []
        masks = stats.masks
        for i in products:
            if i in slots:
                k = slots.index(i)
                counts[k] += 1
                last_days[k] = today
                flags[k] &= ~LAPSED
                if counts[k] == p.regular_after:
                    regular.append(ids[i])
                if state.pending:
                    state.pending = [x for x in state.pending if x[0] != i]
                touched.append(i)
            elif any_layer(state.bloom, masks[i]):
                if state.add_slot(i, 2, today, p.max_slots, p.lapse_days):
                    if p.regular_after == 2:
                        regular.append(ids[i])
                    touched.append(i)
            else:
                state.remember(masks[i])
                new.append(i)
        if new and slots:
            self._switches(state, distinct, new, today, p, moves)
        self._made = (lines, products)  # their indexes here, for `_learn_order`
        self.share((ORDER, day, lines, described, regular, lapsed, moves))
        self._made = None
        return state, touched

    def _switches(self, state: CustomerProducts, present: dict[int, float], new: list[int],
                  today: int, p: SwitchSellParams, moves: list[str]) -> None:
        """New products alike a regular one missing from this order: possible moves (to
        `moves`, by id, once the regular one has lapsed). `present`: the order's products
        and unit prices, not learned yet."""
        stats = self.stats
        tokens, category, price, ids = stats.tokens, stats.category, stats.price, stats.ids
        need, ratio = p.min_shared_words, p.max_price_ratio
        for k, a in enumerate(state.products):
            if (a in present or today - state.last_days[k] > p.switch_window_days
                    or state.counts[k] < p.regular_after):
                continue
            ta, ca, pa = tokens[a], category[a], price[a]
            for b in new:
                if not same_kind(ta, tokens[b], ca, category[b], need):
                    continue
                # its unit price once the order is learned (the regular product a is
                # not in the order: its price stays)
                pb = stats.price_after(b, present[b])
                if pa > 0 and pb > 0 and max(pa, pb) > ratio * min(pa, pb):
                    continue
                if state.flags[k] & LAPSED:
                    moves += (ids[a], ids[b])
                elif not any(x[0] == a and x[1] == b for x in state.pending):
                    state.pending.append((a, b, today))
                    if len(state.pending) > 4:
                        del state.pending[0]

    def learn_return(self, customer_id: str, lines: Sequence[tuple[str, float, float]]
                     ) -> tuple[CustomerProducts, list[int]]:
        """Count a return against the customer's regular products it names (and, across
        customers, the return lines naming known products: a RETURN update)."""
        stats = self.stats
        touched: list[int] = []
        state = self.customers.get(customer_id)
        if state is None:
            state = self.customers[customer_id] = CustomerProducts()
        returned: list[str] = []
        for product_id, _, _ in lines:
            i = stats.index.get(product_id)
            if i is None:
                continue
            returned.append(product_id)
            if i in touched or i not in state.products:
                continue
            k = state.products.index(i)
            state.returns[k] = min(state.returns[k] + 1, 255)
            touched.append(i)
        if returned:
            self.share((RETURN, returned))
        return state, touched

    def learn_population(self, update: tuple[Any, ...]) -> None:
        """Apply one update (see ORDER, RETURN, PRODUCT), made here or in another
        partition, whose product indexes differ: updates name products by id, and carry
        the name and category of the products new to the instance that made them. Lists
        stand for tuples (updates come back from JSON).

        An order teaches: the products new to the instance that made the update, the
        sales of its lines (one per product), and the products its customer took up
        regularly, dropped, or dropped for another (it runs for every order: inlined)."""
        kind = update[0]
        if kind == ORDER:
            _, day, lines, described, regular, lapsed, moves = update
            stats = self.stats
            if described:
                for product_id, name, category in described:
                    if product_id not in stats.index:
                        self._add(product_id, name, category)
            made = self._made
            if made is not None and made[0] is lines:  # the update this instance made
                products = made[1]
            else:
                found = list(map(stats.index.get, map(_PRODUCT, lines)))
                products = (cast("list[int]", found) if None not in found
                            else [self._known(line[0]) for line in lines])
            stats.sell(products, lines, day, self.quantity)
            if regular or lapsed or moves:
                self._learn_memory(day, regular, lapsed, moves)
        elif kind == RETURN:
            index, returned = self.stats.index, self.stats.returned
            for product_id in update[1]:
                i = index.get(product_id)
                if i is not None:
                    returned[i] += 1
        elif kind == PRODUCT:
            _, product_id, name, category = update
            if product_id not in self.stats.index:
                self._add(product_id, name, category)
        else:
            raise ValueError(f"unknown switch_sell population update {kind!r}")

    def _learn_memory(self, day: float, regular: Sequence[str], lapsed: Sequence[str],
                      moves: Sequence[str]) -> None:
        """Products an order's customer took up regularly, dropped, dropped for another
        (`moves`: dropped id, taken id, ...)."""
        stats, known = self.stats, self._known
        for product_id in regular:
            stats.add_regular(known(product_id), day)
        for product_id in lapsed:
            stats.add_lapse(known(product_id), day)
        for n in range(0, len(moves), 2):
            stats.add_move(known(moves[n]), known(moves[n + 1]), day)

    def bare_arithmetic(self, events: Sequence[Event]) -> Callable[[], None] | None:
        """Trend, lapse and substitute learning over pre-extracted orders and returns."""
        names = {e.product_id: (e.name, e.category) for e in events if isinstance(e, Product)}

        def describe(product_id: str) -> tuple[str | None, str | None]:
            return names.get(product_id, (None, None))

        stream = [(isinstance(e, Order), e.customer_id, e.occurred_at.timestamp() / DAY,
                   [(x.product_id, x.unit_price, x.quantity) for x in e.lines])
                  for e in events if isinstance(e, Order | Return)]
        params = self.params

        def run() -> None:
            for is_order, customer, day, lines in stream:
                if is_order:
                    self.learn_order(customer, day, lines, params, describe)
                else:
                    self.learn_return(customer, lines)

        return run

    # detection
    def _best_case(self, state: CustomerProducts, touched: list[int], day: float,
                   p: SwitchSellParams, ctx: Context) -> Case | None:
        best: Case | None = None
        for i in touched:
            k = state.slot(i)
            if k < 0 or state.counts[k] < p.min_orders:
                continue
            case = self._case(state, i, k, day, p, ctx)
            if case is not None and (best is None or case.score > best.score):
                best = case
        return best

    def _case(self, state: CustomerProducts, a: int, k: int, day: float, p: SwitchSellParams,
              ctx: Context) -> Case | None:
        stats = self.stats
        reasons = []
        ref = ctx.catalog.products.get(stats.ids[a])
        if ref is not None and ref.discontinued:
            reasons.append("discontinued")
        recent, usual, all_recent, all_usual = stats.weekly(a, day)
        decline = 0.0
        market = all_recent / all_usual if all_usual > 0 else 1.0
        if usual > 0 and market > 0:
            decline = max(1.0 - recent / usual / market, 0.0)
        old_enough = day - stats.first_day[a] >= p.min_history_days
        if old_enough and usual >= p.min_weekly_lines and decline >= p.min_decline:
            reasons.append("declining")
        regular, stopped = stats.memory(a, day)
        abandon = wilson_lower(stopped, regular) if regular >= p.min_buyers else 0.0
        if regular >= p.min_buyers and stopped / regular >= p.min_lapse_share:
            reasons.append("abandoned")
        if (state.returns[k] >= p.min_returns
                and state.returns[k] >= p.min_return_share * state.counts[k]):
            reasons.append("returns")
        if not reasons:
            return None
        target = self._target(state, a, day, p, ctx)
        if target is None:
            return None
        b, source, movers = target
        strength = [abandon]
        if "discontinued" in reasons:
            strength.append(0.9)
        if "declining" in reasons:
            strength.append(decline)
        if "returns" in reasons:
            strength.append(0.5 * min(state.returns[k] / state.counts[k], 1.0))
        score = 1.0 - math.prod(1.0 - s for s in strength)
        return Case(a, k, tuple(reasons), min(max(score, 0.0), 1.0), b, source, decline,
                    recent, usual, market, regular, stopped, movers)

    def _target(self, state: CustomerProducts, a: int, day: float, p: SwitchSellParams,
                ctx: Context) -> tuple[int, str, float] | None:
        """(product, where the suggestion comes from, customers who moved to it)."""
        stats = self.stats
        catalog = ctx.catalog.products
        ref = catalog.get(stats.ids[a])
        if ref is not None:
            for sub in ref.substitutes:
                b = stats.index.get(sub)
                sub_ref = catalog.get(sub)
                if sub == stats.ids[a] or (sub_ref is not None and sub_ref.discontinued):
                    continue
                if b is None:  # met here first: every partition learns its description
                    self.share((PRODUCT, sub, *_describe_from(catalog)(sub)))
                    b = stats.index[sub]
                return b, "catalogue", 0.0
        for b, n in stats.movers(a, day):
            if n < p.min_switchers:
                break
            if self._fits(b, state, day, p, ctx):
                return b, "learned", n
        best: tuple[tuple[float, float], int] | None = None
        price, ratio = stats.price, p.max_price_ratio
        pa = price[a]
        for b in stats.look_alikes(a, p.min_shared_words):
            # look-alikes are of the same kind already: only the price is left to check
            # (as `stats.alike` would)
            pb = price[b]
            if pa > 0 and pb > 0 and max(pa, pb) > ratio * min(pa, pb):
                continue
            sales = stats.weekly(b, day)
            recent = sales[0]
            if recent < p.min_weekly_lines or not self._fits(b, state, day, p, ctx, sales):
                continue
            rank = (float(state.seen(stats.masks[b])), recent)  # tried before: first
            if best is None or rank > best[0]:
                best = (rank, b)
        return (best[1], "look-alike", 0.0) if best else None

    def _fits(self, b: int, state: CustomerProducts, day: float, p: SwitchSellParams,
              ctx: Context,
              sales: tuple[float, float, float, float] | None = None) -> bool:
        """A product worth moving to: sold, not discontinued, not declining, not already
        a regular product of the customer (`sales`: its `weekly` on `day`, when known)."""
        stats = self.stats
        ref = ctx.catalog.products.get(stats.ids[b])
        if ref is not None and ref.discontinued:
            return False
        if state.slot(b) >= 0 and not state.flags[state.slot(b)] & LAPSED:
            return False
        recent, usual, all_recent, all_usual = sales or stats.weekly(b, day)
        if usual <= 0 or all_usual <= 0:
            return False
        return recent / usual / (all_recent / all_usual) > 1.0 - p.min_decline

    # explanation
    def _finding(self, event: Order | Return, state: CustomerProducts, case: Case, day: float,
                 ctx: Context) -> Finding:
        stats, catalog, cur = self.stats, ctx.catalog, self.currency
        customer = catalog.customer_name(event.customer_id)
        a_id, b_id = stats.ids[case.product], stats.ids[case.target]
        a_name, b_name = catalog.product_name(a_id), catalog.product_name(b_id)
        k = case.slot
        orders = state.counts[k]
        why = []
        if "discontinued" in case.reasons:
            why.append("it is discontinued in the catalogue")
        if "declining" in case.reasons:
            why.append(
                f"its sales across all customers fell {case.decline:.0%} against the rest of "
                f"the catalogue ({case.recent_weekly:.1f} order lines a week lately, "
                f"{case.usual_weekly:.1f} usually)")
        if "abandoned" in case.reasons:
            share = case.stopped / case.regular_buyers
            why.append(f"{share:.0%} of the customers who bought it regularly have stopped "
                       f"buying it (about {case.stopped:.0f} of {case.regular_buyers:.0f}, "
                       f"recent buyers counting more)")
        if "returns" in case.reasons:
            why.append(f"this customer returned it {state.returns[k]} times in "
                       f"{state.counts[k]} orders")
        if case.target_source == "catalogue":
            to = f"the catalogue lists {b_name} as its substitute"
        elif case.target_source == "learned":
            share = case.movers / case.stopped if case.stopped > 0 else 0.0
            to = (f"{case.movers:.0f} customers who dropped it moved to {b_name}"
                  + (f" ({share:.0%} of those who stopped)" if share > 0 else ""))
        else:
            rb = stats.weekly(case.target, day)[0]
            to = (f"{b_name} is the best-selling look-alike ({rb:.1f} order lines a week "
                  f"lately)")
        text = (f"{customer} bought {a_name} in {orders} orders (last on "
                f"{day_label(state.last_days[k])}); " + "; ".join(why) + f". {to[0].upper()}"
                f"{to[1:]}.")
        price_b, qty_a = stats.price[case.target], self.quantity[case.product]
        line_value = stats.price[case.product] * qty_a
        action = (f"Offer {b_name} in place of {a_name} on their next order"
                  + (f" (about {money(price_b, cur)} a unit against "
                     f"{money(stats.price[case.product], cur)})" if price_b > 0 else "")
                  + ", and ask what they think of the product they buy now.")
        kind = case.reasons[0]
        severity = (Severity.HIGH if case.score >= 0.6 else
                    Severity.MEDIUM if case.score >= 0.35 else Severity.LOW)
        return Finding(
            detector=self.name, kind=kind, subject_kind="customer",
            subject_id=event.customer_id, occurred_at=event.occurred_at,
            score=round(case.score, 4), severity=severity,
            title=f"Move {customer} from {a_name} to {b_name}",
            explanation=text, action=action,
            dedup_key=f"switch_sell:{event.customer_id}:{a_id}",
            evidence=(event.event_id,),
            value=round(max(line_value, 0.0), 2),
            facts={"product_id": a_id, "to_product_id": b_id, "reasons": list(case.reasons),
                   "target_source": case.target_source, "orders_of_product": orders,
                   "returns_of_product": state.returns[k],
                   "decline": round(case.decline, 4),
                   "weekly_lines_recent": round(case.recent_weekly, 2),
                   "weekly_lines_usual": round(case.usual_weekly, 2),
                   "regular_buyers": round(case.regular_buyers, 1),
                   "stopped": round(case.stopped, 1), "movers": round(case.movers, 1)},
        )


def _describe_from(products: Mapping[str, Product]) -> Callable[[str], tuple[str | None,
                                                                        str | None]]:
    """Name and category of a product from the catalogue."""
    def describe(product_id: str) -> tuple[str | None, str | None]:
        ref = products.get(product_id)
        return (ref.name, ref.category) if ref else (None, None)
    return describe
