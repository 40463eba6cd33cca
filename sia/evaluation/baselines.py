"""The simple rules a CRM ships with, run on the same replay for comparison."""

from __future__ import annotations

from collections import defaultdict

from sia.evaluation.outcomes import Outcomes
from sia.events.models import Order


class PopularNotBought:
    """Cross-sell baseline: the most popular product the customer has not bought yet.

    Prequential: it is fed each order as the engine sees it, so it only knows the past.
    Popularity is the number of distinct customers who bought the product so far.
    """

    def __init__(self) -> None:
        self.bought: dict[str, set[str]] = defaultdict(set)
        self.buyers: dict[str, int] = defaultdict(int)
        self._ranking: list[str] = []
        self._stale = True

    def learn(self, order: Order) -> None:
        """Count the order's new customer-product pairs."""
        seen = self.bought[order.customer_id]
        for line in order.lines:
            if line.product_id not in seen:
                seen.add(line.product_id)
                self.buyers[line.product_id] += 1
                self._stale = True

    def suggest(self, customer: str) -> str | None:
        """The suggestion for a customer now."""
        if self._stale:
            self._ranking = sorted(self.buyers, key=lambda p: (-self.buyers[p], p))[:2000]
            self._stale = False
        seen = self.bought.get(customer, set())
        for product in self._ranking:
            if product not in seen:
                return product
        return None


def inactivity_alerts(outcomes: Outcomes, days: float) -> list[tuple[str, float, float]]:
    """Drift baseline "no order in N days": (customer, alert day, last order day)."""
    alerts = []
    for customer, order_days in outcomes.order_days.items():
        for i, last in enumerate(order_days):
            nxt = order_days[i + 1] if i + 1 < len(order_days) else None
            due = last + days
            if (nxt is None and due <= outcomes.last_day) or (nxt is not None and nxt > due):
                alerts.append((customer, due, last))
    return alerts
