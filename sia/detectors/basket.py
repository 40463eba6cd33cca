"""A customer's purchase history for cross-selling, packed into a few hundred bytes."""

from __future__ import annotations

from sia.detectors.packing import from_varints, restore_values, sparse_values, varints


class CustomerBasket:
    """How many orders held each product, and which products the customer buys regularly."""

    __slots__ = ("checked_at", "counts", "orders", "regular", "regular_since")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}  # product index -> orders containing it
        self.regular: list[int] = []  # product indexes bought regularly, in order
        self.regular_since = -1  # day the first product became regular (-1: none yet)
        self.orders = 0
        self.checked_at = -1e9  # day of the last cross-sell look

    def add_order(self, products: list[int], day: int, regular_after: int,
                  max_regular: int) -> list[int]:
        """Count an order's distinct products; returns those that just became regular."""
        self.orders += 1
        new_regular = []
        counts = self.counts
        for product in products:
            seen = counts.get(product, 0) + 1
            counts[product] = seen
            if seen == regular_after and len(self.regular) < max_regular:
                if not self.regular:
                    self.regular_since = day
                self.regular.append(product)
                new_regular.append(product)
        return new_regular

    def __getstate__(self) -> tuple[object, ...]:
        # products and counts as varints, in the dict's order: 3 bytes a product, not 5
        return sparse_values((varints(self.counts), varints(self.counts.values()),
                              varints(self.regular), self.regular_since, self.orders,
                              self.checked_at), _BASKET_DEFAULTS)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        (products, counts, regular, self.regular_since, self.orders,
         self.checked_at) = restore_values(state, _BASKET_DEFAULTS)
        self.counts = dict(zip(from_varints(products), from_varints(counts), strict=True))
        self.regular = from_varints(regular)


# initial values of the snapshot fields, left out of snapshots
_BASKET_DEFAULTS: tuple[object, ...] = (b"", b"", b"", -1, 0, -1e9)
