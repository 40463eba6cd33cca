"""Up-sell: a customer ready to buy more of a product, or its next tier.

Two signals, both learned online from the stream:

- `price_break`: the seller prices by quantity (the same product sold cheaper a unit from
  Q units a line upward; learned per product from the prices lines actually pay, see
  up_sell_breaks.py) and the customer buys the product below a break, close to it.
  Whether they will buy at the break within the horizon is predicted by an online
  logistic model trained on how such situations ended before in the stream
  (up_sell_model.py): how close their typical quantity is to the break, whether it is
  growing, whether they bought at the break before, how often this customer takes
  quantity prices on other products, and how clearly the break is priced. Fires when
  that chance reaches `min_probability`, at most once per customer every
  `recheck_days`, for the candidate most likely to convert.
- `upgrade`: the catalogue offers a next tier (`upgrade_to` in the product reference
  data) of a product the customer keeps buying, they never bought it, and a good share
  of the customers who bought the entry product went on to buy the upgrade (Wilson lower
  bound at least `min_adoption`).

Per customer: two counts and up to `max_products` product slots (up_sell_state.py; the
median customer's state pickles to under 200 bytes). Global: the (quantity, price) table
of each product (bounded), a logistic model of a dozen weights with its open situations
(at most `max_open`), and adoption counts per upgrade path.

Population models (shared by the partitions of a split stream, see base.Detector): the
price-break tables, learned from every customer's order lines; the model's weights,
trained on every customer's resolved situations; and the buyer and adopter counts of
tiered products. Each step of their learning is an update naming products by id
(`learn_population`). The open situations stay with the customer's partition (they
wait for that customer's lines), as do the customer's slots and tiers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

from sia.detectors.base import Context, Detector, Params, register, threshold
from sia.detectors.copurchase import wilson_lower
from sia.detectors.money import day_label, money
from sia.detectors.rhythm import DAY
from sia.detectors.up_sell_breaks import Break, PriceBreaks, next_break
from sia.detectors.up_sell_model import BreakModel
from sia.detectors.up_sell_state import UpSellCustomer
from sia.events.models import Event, Order, Product
from sia.findings import Finding, Severity

QUARTER_DAYS = 91.0
BULK_CAP = 400  # customer's quantity-price counts are halved past this many lines
MAX_TIERS = 8  # tiered products remembered per customer
# population updates (see `UpSellDetector.learn_population`)
LINES = "lines"  # (LINES, [product ids], [quantities], [unit prices in cents]): lines
LABEL = "label"  # (LABEL, features, bought): a situation that ran its horizon
TIER = "tier"  # (TIER, product id, [entry product ids]): a customer's first order of a
# tiered product, and the entry products they had bought on an earlier day


@dataclasses.dataclass(frozen=True)
class UpSellParams(Params):
    """Thresholds of the up-sell detector."""

    min_probability: float = threshold(
        0.3, "Price-break alert: fires when the learned chance that the customer buys at the "
        "break quantity within horizon_days reaches this. Higher: fewer, surer alerts.",
        low=0, high=1, low_open=True, high_open=True, unit="probability 0..1",
        fewer_alerts="higher")
    min_ratio: float = threshold(
        0.5, "... and when the customer's typical quantity is at least this share of the "
        "break quantity.",
        low=0, high=1, low_open=True, unit="share 0..1", fewer_alerts="higher")
    min_product_lines: int = threshold(
        1, "Order lines of the product by the customer (since it is tracked) before it is "
        "suggested.",
        low=1, unit="order lines", fewer_alerts="higher")
    min_orders: int = threshold(
        2, "Orders a customer must have placed before they get an up-sell alert (both kinds).",
        low=2, unit="orders", fewer_alerts="higher")
    recheck_days: float = threshold(
        14.0, "At most one up-sell alert per customer this often.",
        low=0, unit="days", fewer_alerts="higher")
    horizon_days: float = threshold(
        90.0, "Price-break alert: the time within which buying at the break is learned and "
        "predicted.",
        low=7, high=730, unit="days", learning=True)
    min_labels: int = threshold(
        300, "No price-break alerts until this many situations have run their horizon_days, "
        "so the model has learned.",
        low=0, unit="situations", learning=True)
    learn_ratio: float = threshold(
        0.4, "Products the customer buys in quantities of at least this share of a break are "
        "tracked and learned from.",
        low=0, high=1, low_open=True, unit="share 0..1", learning=True)
    learning_rate: float = threshold(
        0.5, "How fast the price-break model learns from each outcome. Higher: learns faster, "
        "but less steadily.",
        low=0, high=10, low_open=True, unit="step size", learning=True)
    min_discount: float = threshold(
        0.05, "A price break must save the customer at least this share of the unit price "
        "(0.05: 5%).",
        low=0, high=1, low_open=True, high_open=True, unit="share 0..1", learning=True)
    break_share: float = threshold(
        0.6, "A price break is believed when at least this share of order lines from the "
        "break quantity up pay the break price or less.",
        low=0.5, high=1, unit="share 0..1", learning=True)
    stray_share: float = threshold(
        0.1, "... and at most this share of lines below the break quantity do (else it is a "
        "price change, not a break).",
        low=0, high=0.5, high_open=True, unit="share 0..1", learning=True)
    min_break_lines: float = threshold(
        5.0, "Order lines needed on each side of a break before it is believed.",
        low=1, unit="order lines", learning=True)
    max_products: int = threshold(
        16, "Products tracked per customer for price breaks.",
        low=1, high=64, unit="products", learning=True)
    max_open: int = threshold(
        50_000, "Situations awaiting their outcome kept at most, for learning.",
        low=1, unit="situations", learning=True)
    min_entry_orders: int = threshold(
        2, "Upgrade alert: orders of the entry product by the customer before an upgrade is "
        "suggested.",
        low=1, unit="orders", fewer_alerts="higher")
    min_entry_customers: int = threshold(
        5, "... customers who bought the entry product before how often they go on to the "
        "upgrade is trusted.",
        low=1, unit="customers", fewer_alerts="higher")
    min_adoption: float = threshold(
        0.2, "... and the share of them who went on to buy the upgrade must be at least this "
        "(a cautious estimate that allows for few customers). Higher: fewer, surer upgrade "
        "alerts.",
        low=0, high=1, high_open=True, unit="share 0..1", fewer_alerts="higher")


class Candidate(NamedTuple):
    """A line of the order below a price break, with what the model sees of it."""

    product: int
    slot: int  # offset of the product's slot in the customer's state
    brk: Break
    quantity: float
    price: float
    features: tuple[float, ...]


@register
class UpSellDetector(Detector[UpSellParams]):
    """Customers close to a quantity price break, or ready for the next tier.

    Learns each product's quantity price breaks from the prices lines pay, a model of
    whether a customer near a break crosses it, and how often buyers adopt a next tier."""

    name = "up_sell"
    params_type = UpSellParams
    handles = frozenset({"order", "product"})
    warm_up_hint = ("price breaks: once min_labels situations have run their horizon; "
                    "upgrades: once min_entry_customers bought the entry product")
    global_params = frozenset({"horizon_days", "min_labels", "learn_ratio", "learning_rate",
                               "min_discount",
                               "break_share", "stray_share", "min_break_lines",
                               "max_products", "max_open"})
    shares_population = True

    def __init__(self, **thresholds: object) -> None:
        super().__init__(**thresholds)
        p = self.params
        self.product_index: dict[str, int] = {}
        self.product_ids: list[str] = []
        self.customers: dict[str, UpSellCustomer] = {}
        self.breaks = PriceBreaks(min_discount=p.min_discount, break_share=p.break_share,
                                  stray_share=p.stray_share, min_break_lines=p.min_break_lines)
        self.model = BreakModel(p.horizon_days, p.max_open, p.learning_rate)
        # tiered catalogue (reference data): product -> the products it upgrades to,
        # and upgrade -> the entry products it upgrades
        self.tiered: dict[str, tuple[str, ...]] = {}
        self.upgrades_of: dict[int, list[int]] = {}
        self.tier_buyers: dict[int, int] = {}  # product -> customers who bought it
        self.adopters: dict[tuple[int, int], int] = {}  # (entry, upgrade) -> customers
        self.currency: str | None = None

    @classmethod
    def unit_test_params(cls) -> dict[str, object]:
        """No model warm-up, low bars, so short test streams produce findings."""
        return {"min_labels": 0, "min_probability": 0.05, "min_ratio": 0.3,
                "min_break_lines": 3.0, "recheck_days": 0.0, "min_entry_customers": 2,
                "min_adoption": 0.05}

    def customer_state(self, customer_id: str) -> object | None:
        """The customer's counts and product slots."""
        return self.customers.get(customer_id)

    def _index(self, product_id: str) -> int:
        index = self.product_index.get(product_id)
        if index is None:
            index = self.product_index[product_id] = len(self.product_ids)
            self.product_ids.append(product_id)
            self.breaks.grow(len(self.product_ids))
        return index

    # learning
    def observe(self, event: Event, ctx: Context) -> list[Finding]:
        """Learn from an order (or a product's tiers); maybe point at a break or an upgrade."""
        if isinstance(event, Product):
            self.learn_product(event.product_id, event.tier, event.upgrade_to)
            return []
        if not isinstance(event, Order):
            return []
        if event.currency:
            self.currency = event.currency
        p = self.params_for(ctx, event.customer_id)
        day = event.day
        state, candidates, tiered = self.learn_order(event.customer_id, day, event.priced_lines)
        findings: list[Finding] = []
        if state.orders < p.min_orders or day - state.fired_at < p.recheck_days:
            return findings
        finding = self._price_break(event, state, candidates, p, ctx)
        if finding is None and tiered:
            finding = self._upgrade(event, state, tiered, p, ctx)
        if finding is not None:
            state.fired_at = day
            findings.append(finding)
        return findings

    def bare_arithmetic(self, events: Sequence[Event]) -> Callable[[], None] | None:
        """Price-break, slot, model and tier learning over pre-extracted events."""
        steps: list[tuple[str, float, list[tuple[str, float, float]]] | Product] = [
            (e.customer_id, e.occurred_at.timestamp() / DAY,
             [(line.product_id, line.unit_price, line.quantity) for line in e.lines])
            if isinstance(e, Order) else e
            for e in events if isinstance(e, Order | Product)]

        def run() -> None:
            for step in steps:
                if isinstance(step, Product):
                    self.learn_product(step.product_id, step.tier, step.upgrade_to)
                else:
                    self.learn_order(*step)

        return run

    def learn_product(self, product_id: str, tier: str | None, upgrade_to: list[str]) -> None:
        """Reference data: a product of a tiered catalogue and what it upgrades to."""
        if not tier and not upgrade_to and product_id not in self.tiered:
            return
        self.tiered[product_id] = tuple(upgrade_to)
        index = self._index(product_id)
        for upgrade_id in upgrade_to:
            self.tiered.setdefault(upgrade_id, ())
            sources = self.upgrades_of.setdefault(self._index(upgrade_id), [])
            if index not in sources:
                sources.append(index)

    def learn_order(self, customer_id: str, day: float, lines: Sequence[tuple[str, float, float]]
                    ) -> tuple[UpSellCustomer, list[Candidate], list[int]]:
        """Learning arithmetic of one order: (product, unit price, quantity) lines.

        Returns the customer's state, the lines that are candidates for a price-break
        suggestion, and the tiered products of the order.
        """
        for x, bought in self.model.due(day):
            self.share((LABEL, x, bought))
        state = self.customers.get(customer_id)
        if state is None:
            state = self.customers[customer_id] = UpSellCustomer()
            state.first_day = int(day)
        state.orders += 1
        candidates: list[Candidate] = []
        tiered: list[int] = []
        # the price-break tables learn the lines first, a run of distinct products at a
        # time (the whole order, unless a product comes back in it): each line then
        # meets its product's breaks as they are right after it
        products = list(map(_PRODUCT, lines))
        if len(set(products)) < len(products):
            for run in _distinct_runs(lines):
                self.share(_lines_update(list(map(_PRODUCT, run)), run))
                self._learn_lines(customer_id, day, state, run, candidates, tiered)
        elif products:
            self.share(_lines_update(products, lines))
            self._learn_lines(customer_id, day, state, lines, candidates, tiered)
        if state.bulk_lines > BULK_CAP:
            state.halve_bulk()
        return state, candidates, tiered

    def _learn_lines(self, customer_id: str, day: float, state: UpSellCustomer,
                     lines: Sequence[tuple[str, float, float]], candidates: list[Candidate],
                     tiered: list[int]) -> None:
        """The customer's side of lines the price-break tables have learned: tiers, slots,
        the model's situations and the candidates (appended to `candidates`, `tiered`)."""
        p = self.params
        model = self.model
        known, tiers = self.product_index, self.tiered
        ladders = self.breaks.ladders
        opened = model.open
        learn_ratio, max_products = p.learn_ratio, p.max_products
        keep = 1.0 - p.min_discount  # the break must save the customer this much
        for product_id, price, quantity in lines:
            index = known[product_id]  # indexed by `learn_population`
            if tiers and product_id in tiers and index not in tiered:
                tiered.append(index)
                self._learn_tier(state, index, day)
            ladder = ladders[index]
            if not ladder:
                continue
            state.bulk_lines += 1
            if quantity >= ladder[0].quantity:
                state.bulk_hits += 1
            if opened and (customer_id, index) in opened:
                model.saw(customer_id, index, quantity)
            brk = next_break(ladder, quantity)
            slot = state.slot_of(index)
            if slot >= 0:
                state.update(slot, quantity)
            elif quantity >= learn_ratio * (brk or ladder[0]).quantity:
                slot = state.admit(index, quantity, max_products)
            if brk is None or slot < 0 or brk.price > price * keep:
                continue  # above the top break, untracked, or too little to save
            q = brk.quantity
            if state.slots[slot + 3] < learn_ratio * q:
                continue
            x = self.features(state, slot, brk, quantity)
            if state.slots[slot] >= p.min_product_lines:
                model.watch(customer_id, index, day, q, x)
            candidates.append(Candidate(index, slot, brk, quantity, price, x))

    def features(self, state: UpSellCustomer, slot: int, brk: Break,
                 quantity: float) -> tuple[float, ...]:
        """What the model sees of a line below a break (see up_sell_model.FEATURES)."""
        s = state.slots
        q = brk.quantity
        lines, largest, fast, slow = s[slot], s[slot + 2], s[slot + 3], s[slot + 4]
        return (1.0, min(fast / q, 1.0), quantity / q, 1.0 if largest >= q else 0.0,
                math.log1p(lines), state.bulk_share(), brk.share,
                max(min((fast - slow) / q, 1.0), -1.0), math.log(q) / 5.0, brk.popularity,
                math.log1p(state.orders) / 3.0, min(lines / state.orders, 1.0))

    def _learn_tier(self, state: UpSellCustomer, index: int, day: float) -> None:
        """Count an order of a tiered product; an upgrade bought after its entry is adopted."""
        _, _, new = state.tier_count(index, int(day), MAX_TIERS)
        if not new:
            return
        ids = self.product_ids
        adopted = []
        for entry in self.upgrades_of.get(index, ()):
            orders, first = state.tier_of(entry)
            if orders and first < int(day):
                adopted.append(ids[entry])
        self.share((TIER, ids[index], adopted))

    # population models
    def learn_population(self, update: tuple[Any, ...]) -> None:
        """Learn one step of the population models, made here or in another partition
        (whose product indexes differ: updates name products by id)."""
        kind = update[0]
        if kind == LINES:
            self._learn_break_lines(update[1], update[2], update[3])
        elif kind == LABEL:
            self.model.learn(update[1], bool(update[2]))
        elif kind == TIER:
            upgrade = self._index(update[1])
            self.tier_buyers[upgrade] = self.tier_buyers.get(upgrade, 0) + 1
            adopters = self.adopters
            for entry_id in update[2]:
                key = (self._index(entry_id), upgrade)
                adopters[key] = adopters.get(key, 0) + 1
        else:
            raise ValueError(f"unknown up_sell population update {kind!r}")

    def _learn_break_lines(self, products: Sequence[str], quantities: Sequence[float],
                           prices: Sequence[int]) -> None:
        """Count lines (product id, quantity, unit price in cents) in the price-break
        tables (PriceBreaks.add, inlined: it runs for every line)."""
        known, breaks = self.product_index, self.breaks
        cells, fresh, due = breaks.cells, breaks.fresh, breaks.due
        cell_cap = breaks.cell_cap
        for product_id, quantity, cents in zip(products, quantities, prices, strict=True):
            index = known.get(product_id)
            if index is None:
                index = self._index(product_id)
            table = cells[index]
            key = (quantity, cents)
            table[key] = table.get(key, 0.0) + 1.0
            seen = fresh[index] + 1.0
            if seen >= due[index] or len(table) > cell_cap:
                breaks.refresh(index, seen)
            else:
                fresh[index] = seen

    # detection
    def _price_break(self, order: Order, state: UpSellCustomer, candidates: list[Candidate],
                     p: UpSellParams, ctx: Context) -> Finding | None:
        if not candidates or self.model.labels < p.min_labels:
            return None
        best: tuple[float, Candidate] | None = None
        for c in candidates:
            if c.features[1] < p.min_ratio or state.slots[c.slot] < p.min_product_lines:
                continue
            probability = self.model.predict(c.features)
            if best is None or probability > best[0]:
                best = (probability, c)
        if best is None or best[0] < p.min_probability:
            return None
        return self._break_finding(order, state, best[1], best[0], p, ctx)

    def _break_finding(self, order: Order, state: UpSellCustomer, c: Candidate,
                       probability: float, p: UpSellParams, ctx: Context) -> Finding:
        catalog, cur = ctx.catalog, self.currency
        customer = catalog.customer_name(order.customer_id)
        product_id = self.product_ids[c.product]
        product = catalog.product_name(product_id)
        s = state.slots
        lines, largest, fast, slow = (int(s[c.slot]), s[c.slot + 2], s[c.slot + 3],
                                      s[c.slot + 4])
        brk = c.brk
        q = brk.quantity
        discount = 1.0 - brk.price / c.price
        tenure = max(order.day - state.first_day, QUARTER_DAYS)
        units_a_quarter = fast * lines * QUARTER_DAYS / tenure
        saved = units_a_quarter * (c.price - brk.price)
        extra = max(q * brk.price - c.quantity * c.price, 0.0)
        paid = money(c.price, cur)
        if lines >= 2:
            if slow <= 0.8 * fast and fast - slow >= 1:
                trend = f", up from {_units(slow)}"
            elif slow >= 1.25 * fast and slow - fast >= 1:
                trend = f", down from {_units(slow)}"
            else:
                trend = ""
            history = (f"{customer} buys {product} {_units(fast)} at a time{trend}, over "
                       f"{lines} orders; {_units(c.quantity)} on this order at {paid} a unit.")
            if largest >= q:
                history += f" They have bought {_units(largest)} at once before."
        else:
            history = f"{customer} bought {_units(c.quantity)} {product} at {paid} a unit."
        text = (
            f"{history} From {_units(q)} units the price drops to {money(brk.price, cur)} "
            f"({discount:.0%} off): {brk.share:.0%} of lines of {_units(q)} or more sell at "
            f"that price or less. At their volume (about {_units(units_a_quarter)} units a "
            f"quarter) that saves them about {money(saved, cur)} a quarter. On "
            f"{state.bulk_hits} of their last {state.bulk_lines} lines of products with a "
            f"quantity price they bought enough to get it. Trained on "
            f"{self.model.labels:,} past cases in this stream, SIA puts the chance they buy "
            f"{_units(q)} or more within {p.horizon_days:.0f} days at {probability:.0%}."
        )
        severity = (Severity.HIGH if probability >= 0.5 else
                    Severity.MEDIUM if probability >= 0.3 else Severity.LOW)
        return Finding(
            detector=self.name, kind="price_break", subject_kind="customer",
            subject_id=order.customer_id, occurred_at=order.occurred_at,
            score=round(probability, 4), severity=severity,
            title=(f"{customer}: {product} {_units(fast)} at a time, {discount:.0%} off from "
                   f"{_units(q)}"),
            explanation=text,
            action=(f"Offer {customer} {_units(q)} units of {product} at "
                    f"{money(brk.price, cur)} ({money(q * brk.price, cur)}) on the next order "
                    f"instead of {_units(c.quantity)} at {paid} "
                    f"({money(c.quantity * c.price, cur)}): lead with the {discount:.0%} unit "
                    f"saving."),
            dedup_key=f"up_sell:price_break:{order.customer_id}:{product_id}:{q:g}",
            evidence=(order.event_id,),
            value=round(extra, 2),
            facts={"product_id": product_id, "break_quantity": q,
                   "break_price": brk.price, "unit_price": round(c.price, 4),
                   "quantity": c.quantity, "typical_quantity": round(fast, 2),
                   "earlier_quantity": round(slow, 2), "lines": lines,
                   "probability": round(probability, 4),
                   "bulk_share": round(state.bulk_share(), 4),
                   "break_share": round(brk.share, 4),
                   "saving_per_quarter": round(saved, 2)},
        )

    def _upgrade(self, order: Order, state: UpSellCustomer, tiered: list[int],
                 p: UpSellParams, ctx: Context) -> Finding | None:
        best: tuple[float, int, int, int, int] | None = None  # lower, entry, upgrade, n, k
        for entry in tiered:
            orders, _ = state.tier_of(entry)
            if orders < p.min_entry_orders:
                continue
            buyers = self.tier_buyers.get(entry, 0)
            if buyers < p.min_entry_customers:
                continue
            for upgrade_id in self.tiered.get(self.product_ids[entry], ()):
                upgrade = self.product_index.get(upgrade_id)
                if upgrade is None or state.tier_of(upgrade)[0]:
                    continue  # bought it already
                took = self.adopters.get((entry, upgrade), 0)
                lower = wilson_lower(took, buyers)
                if lower >= p.min_adoption and (best is None or lower > best[0]):
                    best = (lower, entry, upgrade, buyers, took)
        if best is None:
            return None
        lower, entry, upgrade, buyers, took = best
        return self._upgrade_finding(order, state, entry, upgrade, buyers, took, lower, ctx)

    def _upgrade_finding(self, order: Order, state: UpSellCustomer, entry: int, upgrade: int,
                         buyers: int, took: int, lower: float, ctx: Context) -> Finding:
        catalog, cur = ctx.catalog, self.currency
        customer = catalog.customer_name(order.customer_id)
        entry_id, upgrade_id = self.product_ids[entry], self.product_ids[upgrade]
        entry_name, upgrade_name = catalog.product_name(entry_id), catalog.product_name(upgrade_id)
        orders, first = state.tier_of(entry)
        paid = next(line.unit_price for line in order.lines if line.product_id == entry_id)
        reference = catalog.products.get(upgrade_id)
        upgrade_price = reference.list_price if reference is not None else None
        share = took / buyers
        text = (f"{customer} has bought {entry_name} in {orders} orders since "
                f"{day_label(first)}, never {upgrade_name}, its next tier. {took} of the "
                f"{buyers} customers who bought {entry_name} went on to buy {upgrade_name} "
                f"({share:.0%}; at least {lower:.0%} allowing for the sample size).")
        value = 0.0
        if upgrade_price is not None:
            text += (f" {upgrade_name} lists at {money(upgrade_price, cur)} against the "
                     f"{money(paid, cur)} paid for {entry_name} on this order.")
            value = max(upgrade_price - paid, 0.0) * share
        return Finding(
            detector=self.name, kind="upgrade", subject_kind="customer",
            subject_id=order.customer_id, occurred_at=order.occurred_at,
            score=round(lower, 4),
            severity=Severity.HIGH if lower >= 0.5 else
            Severity.MEDIUM if lower >= 0.3 else Severity.LOW,
            title=f"{customer} keeps buying {entry_name}: propose {upgrade_name}",
            explanation=text,
            action=(f"Propose {upgrade_name} to {customer} at their next {entry_name} "
                    f"purchase: show what the next tier adds and quote it against this "
                    f"order."),
            dedup_key=f"up_sell:upgrade:{order.customer_id}:{upgrade_id}",
            evidence=(order.event_id,),
            value=round(value, 2),
            facts={"product_id": upgrade_id, "entry_product_id": entry_id,
                   "entry_orders": orders, "entry_buyers": buyers, "adopters": took,
                   "adoption": round(share, 4), "adoption_lower": round(lower, 4)},
        )


_PRODUCT, _PRICE, _QUANTITY = itemgetter(0), itemgetter(1), itemgetter(2)


def _lines_update(products: list[str], lines: Sequence[tuple[str, float, float]]
                  ) -> tuple[Any, ...]:
    """The LINES update of (product, unit price, quantity) lines, `products` their ids."""
    return (LINES, products, list(map(_QUANTITY, lines)),
            [int(price * 100.0 + 0.5) for price in map(_PRICE, lines)])


def _distinct_runs(lines: Sequence[tuple[str, float, float]]
                   ) -> list[Sequence[tuple[str, float, float]]]:
    """The lines of an order cut into runs in which no product comes twice."""
    runs = []
    start = 0
    products: set[str] = set()
    for end, line in enumerate(lines):
        if line[0] in products:
            runs.append(lines[start:end])
            start = end
            products.clear()
        products.add(line[0])
    runs.append(lines[start:])
    return runs


def _units(quantity: float) -> str:
    """12, 1,200 or 2.5: no decimals from 10 units up or for whole numbers."""
    if quantity >= 10 or abs(quantity - round(quantity)) < 0.05:
        return f"{quantity:,.0f}"
    return f"{quantity:.1f}"
