"""Decayed co-purchase counts across customers: who buys X regularly also buys Y.

Counts are kept in inflated units (each increment weighs exp(t / tau)), so decaying
every count costs nothing: ratios such as confidence need no decay at all, and
absolute supports are deflated on read. Neighbour lists are bounded (the strongest
`max_neighbours` are kept, in the manner of space-saving counters) so memory and
work per event stay bounded however many products there are.
"""

from __future__ import annotations

import math
from operator import itemgetter


class CoPurchase:
    """Global product-to-product co-purchase structure, learned online."""

    def __init__(self, half_life_days: float, max_neighbours: int) -> None:
        self.tau = half_life_days / math.log(2)
        self.max_neighbours = max_neighbours
        self.origin: float | None = None  # day at which one increment weighs 1 (first seen)
        self.support: list[float] = []  # per product: weighted customers buying it regularly
        self.pairs: list[dict[int, float]] = []  # per product: neighbour -> weighted customers
        self.top: list[float] = []  # per product: the largest count in its row of pairs
        self.customers = 0.0  # weighted customers with at least one regular product
        self._day_weights: dict[int, float] = {}  # memo of weight(day) for whole days

    def weight(self, day: float) -> float:
        """The inflated weight of an increment on `day` (rebasing before it can overflow)."""
        if self.origin is None:
            self.origin = day
        exponent = (day - self.origin) / self.tau
        if exponent > 25.0:
            self._rebase(day)
            exponent = 0.0
        return math.exp(exponent)

    def deflate(self, day: float) -> float:
        """Factor turning inflated units into customers as of `day` (never before the
        origin: decay does not run backwards for a late order)."""
        if self.origin is None:
            return 1.0
        return math.exp(max(-max(day - self.origin, 0.0) / self.tau, -700.0))

    def day_weight(self, day: int) -> float:
        """weight() of a whole day, memoised (pairs are weighted by the day they formed)."""
        w = self._day_weights.get(day)
        if w is None:
            w = self._day_weights[day] = self.weight(float(day))
        return w

    def _rebase(self, day: float) -> None:
        origin = self.origin if self.origin is not None else day
        scale = math.exp(-(day - origin) / self.tau)
        self.support = [s * scale for s in self.support]
        for row in self.pairs:
            for key in row:
                row[key] *= scale
        self.top = [t * scale for t in self.top]
        self.customers *= scale
        self.origin = day
        self._day_weights.clear()

    def grow(self, n_products: int) -> None:
        """Make room for product indexes below n_products."""
        while len(self.support) < n_products:
            self.support.append(0.0)
            self.pairs.append({})
            self.top.append(0.0)

    def add_regular(self, product: int, others: list[int], customer_since: int) -> None:
        """A customer now buys `product` regularly, alongside their other regular products.

        Every count a customer adds weighs the same: the weight of the day they first
        became a regular buyer of anything. So a pair never outweighs either of its
        products and a product never outweighs the customers: confidence and share stay
        within [0, 1] whatever the decay.
        """
        w = self.day_weight(customer_since)
        self.support[product] += w
        if not others:
            self.customers += w
        row, top = self.pairs[product], self.top
        limit = 3 * self.max_neighbours
        row_top = top[product]
        for other in others:
            n = row[other] = row.get(other, 0.0) + w
            if n > row_top:
                row_top = n
            back = self.pairs[other]
            n = back[product] = back.get(product, 0.0) + w
            if n > top[other]:
                top[other] = n
            if len(back) > limit:
                self._prune(back)  # keeps the largest: the row's top stays
        top[product] = row_top
        if len(row) > limit:
            self._prune(row)

    def __setstate__(self, state: dict[str, object]) -> None:
        # snapshots from before `top` existed: derive it (the same value add_regular keeps)
        self.__dict__.update(state)
        if "top" not in state:
            self.top = [max(row.values(), default=0.0) for row in self.pairs]

    def _prune(self, row: dict[int, float]) -> None:
        # stable sort: ties keep insertion order, so results stay deterministic
        keep = sorted(row.items(), key=itemgetter(1), reverse=True)[: self.max_neighbours]
        row.clear()
        row.update(keep)


def wilson_lower(successes: float, trials: float, z: float = 1.96) -> float:
    """Lower bound of the Wilson score interval: a confidence that respects small samples."""
    if trials <= 0:
        return 0.0
    phat = min(successes / trials, 1.0)
    denom = 1 + z * z / trials
    centre = phat + z * z / (2 * trials)
    margin = z * math.sqrt(max(phat * (1 - phat) / trials + z * z / (4 * trials * trials), 0))
    return max((centre - margin) / denom, 0.0)
