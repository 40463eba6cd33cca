"""Cross-sell: a product a customer does not buy, that customers like them buy.

Learns online which products go together across all customers (decayed co-purchase
counts over the products each customer buys regularly, with lift and confidence),
then, at most every `recheck_days` per customer, suggests the strongest product the
customer has never bought, with the evidence behind it.

Population models (learned across customers, shared by the partitions of a split
stream): the co-purchase counts and each product's typical unit price and line
quantity. Every order makes one update, (ORDER, lines, new regular products, products
already regular, day the customer became regular), by product id: the customer's
basket (what they bought, what they buy regularly) stays in their partition, and each
detector instance maps ids to its own product indexes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, cast

from sia.detectors.base import Context, Detector, Params, register, threshold
from sia.detectors.basket import CustomerBasket
from sia.detectors.copurchase import CoPurchase, wilson_lower
from sia.detectors.money import money
from sia.detectors.rhythm import DAY
from sia.events.models import Event, Order
from sia.findings import Finding, Severity

_PRODUCT = itemgetter(0)  # of an order line: (product id, unit price, quantity)
ORDER = "order"  # the one kind of population update: what an order teaches (see above)


@dataclasses.dataclass(frozen=True)
class CrossSellParams(Params):
    """Thresholds of the cross-sell detector."""

    regular_after: int = threshold(
        2, "Orders holding a product before the customer counts as buying it regularly.",
        low=1, unit="orders", learning=True)
    max_regular: int = threshold(
        40, "At most this many products per customer count as bought regularly (the first "
        "ones to become regular).",
        low=2, unit="products", learning=True)
    min_orders: int = threshold(
        3, "Orders a customer must have placed before they get a cross-sell suggestion.",
        low=1, unit="orders", fewer_alerts="higher")
    recheck_days: float = threshold(
        30.0, "Look for a suggestion for the same customer at most this often.",
        low=0, unit="days", fewer_alerts="higher")
    min_confidence: float = threshold(
        0.3, "Suggest a product only when at least this share of the customers who regularly "
        "buy one of this customer's products also buy it. Higher: fewer, stronger "
        "suggestions.",
        low=0, high=1, low_open=True, unit="share 0..1", fewer_alerts="higher")
    min_lift: float = threshold(
        3.0, "... and when those customers buy it at least this many times as often as "
        "customers in general do. Higher: fewer, more specific suggestions.",
        low=1, unit="times", fewer_alerts="higher")
    min_pair_customers: float = threshold(
        8.0, "... and when at least this many customers buy both products (recent customers "
        "count more).",
        low=1, unit="customers", fewer_alerts="higher")
    half_life_days: float = threshold(
        365.0, "Memory of which products are bought together: a purchase counts half after "
        "this many days.",
        low=0, low_open=True, unit="days", learning=True)
    max_neighbours: int = threshold(
        60, "Products most often bought together with a product that are remembered for it.",
        low=1, unit="products", learning=True)
    anchors_considered: int = threshold(
        6, "The customer's most bought regular products that suggestions are looked for from. "
        "Higher: more chances to find a suggestion.",
        low=1, unit="products", fewer_alerts="lower")


@dataclasses.dataclass(frozen=True, slots=True)
class Suggestion:
    """The best product to offer, and the association behind it."""

    product: int
    because_of: int
    confidence: float
    lift: float
    score: float
    buyers_of_anchor: float
    buyers_of_both: float
    share_overall: float


@register
class CrossSellDetector(Detector[CrossSellParams]):
    """Products that customers like this one buy, and this one never has.

    Learns which products go together across customers (decayed co-purchase counts over
    the products each buys regularly, with lift and a Wilson-bounded confidence)."""

    name = "cross_sell"
    params_type = CrossSellParams
    handles = frozenset({"order"})
    warm_up_hint = "speaks about a customer after min_orders orders, once pairs have support"
    global_params = frozenset({"regular_after", "max_regular", "half_life_days",
                               "max_neighbours"})
    shares_population = True

    def __init__(self, **thresholds: object) -> None:
        super().__init__(**thresholds)
        self.product_index: dict[str, int] = {}
        self.product_ids: list[str] = []
        self.unit_price: list[float] = []  # per product, recent typical unit price
        self.line_quantity: list[float] = []
        self.baskets: dict[str, CustomerBasket] = {}
        self.model = CoPurchase(self.params.half_life_days, self.params.max_neighbours)
        self.currency: str | None = None

    @classmethod
    def unit_test_params(cls) -> dict[str, object]:
        """Small supports so short test streams produce suggestions."""
        return {"min_orders": 2, "min_pair_customers": 2.0, "min_lift": 1.0,
                "min_confidence": 0.2, "recheck_days": 0.0}

    def customer_state(self, customer_id: str) -> object | None:
        """The customer's basket."""
        return self.baskets.get(customer_id)

    def _index(self, product_id: str) -> int:
        index = self.product_index.get(product_id)
        if index is None:
            index = self.product_index[product_id] = len(self.product_ids)
            self.product_ids.append(product_id)
            self.unit_price.append(0.0)
            self.line_quantity.append(0.0)
            self.model.grow(len(self.product_ids))
        return index

    def observe(self, event: Event, ctx: Context) -> list[Finding]:
        """Learn co-purchases from an order; maybe suggest a product to this customer."""
        if not isinstance(event, Order):
            return []
        p = self.params_for(ctx, event.customer_id)
        if event.currency:
            self.currency = event.currency
        day = event.day
        basket = self.learn_order(event.customer_id, day, event.priced_lines, p)
        if basket.orders < p.min_orders or day - basket.checked_at < p.recheck_days:
            return []
        basket.checked_at = day
        suggestion = self.suggest(basket, day, p)
        if suggestion is None:
            return []
        return [self._finding(event, basket, suggestion, ctx)]

    def bare_arithmetic(self, events: Sequence[Event]) -> Callable[[], None] | None:
        """Co-purchase learning over pre-extracted orders."""
        orders = [(e.customer_id, e.occurred_at.timestamp() / DAY,
                   [(line.product_id, line.unit_price, line.quantity) for line in e.lines])
                  for e in events if isinstance(e, Order)]
        params = self.params

        def run() -> None:
            for customer, day, lines in orders:
                self.learn_order(customer, day, lines, params)

        return run

    def learn_order(self, customer_id: str, day: float,
                    lines: Sequence[tuple[str, float, float]],
                    p: CrossSellParams) -> CustomerBasket:
        """Learning arithmetic of one order: (product, unit price, quantity) lines.

        The customer's basket learns here; the population models learn from the update
        the order makes (`learn_population`), here at once, and in every partition."""
        found = list(map(self.product_index.get, map(_PRODUCT, lines)))
        # a product new to this instance: indexes made in line order
        indexes = [self._known(line[0]) for line in lines] if None in found else cast(
            list[int], found)
        basket = self.baskets.get(customer_id)
        if basket is None:
            basket = self.baskets[customer_id] = CustomerBasket()
        start = len(basket.regular)
        # dict: an ordered set, determinism without quadratic lookups
        new = basket.add_order(list(dict.fromkeys(indexes)), int(day), p.regular_after,
                               p.max_regular)
        if new:
            ids = self.product_ids.__getitem__
            self.share((ORDER, lines, list(map(ids, new)),
                        list(map(ids, basket.regular[:start])), basket.regular_since))
        else:
            self.share((ORDER, lines, (), (), -1))
        return basket

    def learn_population(self, update: tuple[Any, ...]) -> None:
        """What one order teaches across customers, by product id (this instance's
        indexes are made for ids it has not met): the lines' unit prices and quantities,
        and the customer's products that became regular, each paired with the regular
        products before it, weighted by the day the customer first bought regularly.
        Lists stand for tuples (updates come back from JSON)."""
        kind, lines, new, held, since = update
        if kind != ORDER:
            raise ValueError(f"unknown cross_sell population update {kind!r}")
        price, quantity, known = self.unit_price, self.line_quantity, self.product_index
        for product_id, unit_price, qty in lines:
            index = known.get(product_id)
            if index is None:
                index = self._index(product_id)
            price[index] = price[index] + 0.2 * (unit_price - price[index]) \
                if price[index] else unit_price
            quantity[index] = quantity[index] + 0.2 * (qty - quantity[index]) \
                if quantity[index] else qty
        if not new:
            return
        found = list(map(known.get, held))
        regular = [self._known(product_id) for product_id in held] if None in found else cast(
            list[int], found)
        add = self.model.add_regular
        for product_id in new:
            product = self._known(product_id)
            add(product, regular, since)  # reads the products before this one, keeps none
            regular.append(product)

    def _known(self, product_id: str) -> int:
        index = self.product_index.get(product_id)
        return self._index(product_id) if index is None else index

    def suggest(self, basket: CustomerBasket, day: float,
                p: CrossSellParams) -> Suggestion | None:
        """The never-bought product with the strongest association to a regular product."""
        model = self.model
        customers = model.customers
        if customers <= 0:
            return None
        deflate = model.deflate(day)
        counts, support, pairs, tops = basket.counts, model.support, model.pairs, model.top
        min_pair, min_confidence, min_lift = (p.min_pair_customers, p.min_confidence,
                                              p.min_lift)
        anchors = sorted(basket.regular, key=lambda x: (-counts[x], x))
        # most pairs are too weak: a cut a hair below min_pair (in the rows' inflated
        # units) drops them in one pass; the exact test below decides for the others
        cut = min_pair / deflate * (1.0 - 1e-9)
        best: tuple[float, int, int, float, float, float, float] | None = None
        for anchor in anchors[: p.anchors_considered]:
            n_anchor = support[anchor]
            if n_anchor * deflate < min_pair:
                continue
            top = tops[anchor]  # the strongest partner's count bounds every score below
            if top < cut or (best is not None and wilson_lower(
                    top * deflate, n_anchor * deflate) < best[0]):
                continue  # no partner reaches min_pair, or none can beat the best so far
            strong = [item for item in pairs[anchor].items() if item[1] >= cut]
            for product, n_both in strong:
                if product in counts or n_both * deflate < min_pair:
                    continue
                confidence = min(n_both / n_anchor, 1.0)
                if confidence < min_confidence:
                    continue
                share = support[product] / customers
                lift = confidence / share if share > 0 else 0.0
                if lift < min_lift:
                    continue
                score = wilson_lower(n_both * deflate, n_anchor * deflate)
                if best is None or (score, -product) > (best[0], -best[1]):
                    best = (score, product, anchor, confidence, lift, n_both, share)
        if best is None:
            return None
        score, product, anchor, confidence, lift, n_both, share = best
        return Suggestion(product, anchor, confidence, lift, score,
                          support[anchor] * deflate, n_both * deflate, share)

    def _finding(self, order: Order, basket: CustomerBasket, s: Suggestion,
                 ctx: Context) -> Finding:
        catalog = ctx.catalog
        customer = catalog.customer_name(order.customer_id)
        offer_id = self.product_ids[s.product]
        offer = catalog.product_name(offer_id)
        anchor = catalog.product_name(self.product_ids[s.because_of])
        price, qty = self.unit_price[s.product], self.line_quantity[s.product]
        line_value = price * qty
        cur = self.currency
        severity = (Severity.HIGH if s.score >= 0.5 else
                    Severity.MEDIUM if s.score >= 0.3 else Severity.LOW)
        return Finding(
            detector=self.name, kind="pair", subject_kind="customer",
            subject_id=order.customer_id, occurred_at=order.occurred_at,
            score=round(s.score, 4), severity=severity,
            title=f"Offer {offer} to {customer}",
            explanation=(
                f"{s.confidence:.0%} of the {s.buyers_of_anchor:.0f} customers who buy {anchor} "
                f"regularly also buy {offer} ({s.lift:.1f} times the {s.share_overall:.0%} of "
                f"customers overall). {customer} bought {anchor} in "
                f"{basket.counts[s.because_of]} of their {basket.orders} orders, never {offer}."
            ),
            action=(f"Offer {offer} alongside their next {anchor} order: it sells at about "
                    f"{money(price, cur)} a unit, typically {qty:.0f} units a line "
                    f"({money(line_value, cur)})."),
            dedup_key=f"cross_sell:{order.customer_id}:{offer_id}",
            evidence=(order.event_id,),
            value=round(s.confidence * line_value, 2),
            facts={"product_id": offer_id, "because_of": self.product_ids[s.because_of],
                   "confidence": round(s.confidence, 4), "lift": round(s.lift, 3),
                   "buyers_of_anchor": round(s.buyers_of_anchor, 1),
                   "anchor_orders": basket.counts[s.because_of],
                   "customer_orders": basket.orders},
        )
