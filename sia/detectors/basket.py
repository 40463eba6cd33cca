"""A customer's purchase history for cross-selling, packed into a few hundred bytes."""

from __future__ import annotations


class CustomerBasket:
    """How many orders held each product, and which products the customer buys regularly."""

    __slots__ = ("checked_at", "counts", "orders", "regular", "regular_since")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}  # product index -> orders containing it
        self.regular: list[int] = []  # product indexes bought regularly, in order
        self.regular_since: list[int] = []  # day each became regular (aligned with regular)
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
                self.regular.append(product)
                self.regular_since.append(day)
                new_regular.append(product)
        return new_regular

    def __getstate__(self) -> tuple[object, ...]:
        return (self.counts, self.regular, self.regular_since, self.orders, self.checked_at)

    def __setstate__(
        self, state: tuple[dict[int, int], list[int], list[int], int, float]
    ) -> None:
        self.counts, self.regular, self.regular_since, self.orders, self.checked_at = state
