"""What actually happened after each moment: purchase history indexed for judging alerts."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sia.detectors.rhythm import DAY
from sia.events.models import Event, Order


@dataclass
class Outcomes:
    """Order days per customer and per (customer, product), and order value per day."""

    order_days: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    order_values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    product_days: dict[tuple[str, str], list[float]] = field(
        default_factory=lambda: defaultdict(list))
    first_day: float = float("inf")
    last_day: float = float("-inf")

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> Outcomes:
        """Index every order (sorted by day)."""
        out = cls()
        out.extend(events)
        return out

    def extend(self, events: Iterable[Event]) -> None:
        """Index more orders (in any order of time): the customers and products they
        touch are sorted again, the others are left as they are."""
        customers: set[str] = set()
        products: set[tuple[str, str]] = set()
        for event in events:
            if not isinstance(event, Order):
                continue
            day = event.occurred_at.timestamp() / DAY
            self.first_day = min(self.first_day, day)
            self.last_day = max(self.last_day, day)
            self.order_days[event.customer_id].append(day)
            self.order_values[event.customer_id].append(event.amount)
            customers.add(event.customer_id)
            for product in {line.product_id for line in event.lines}:
                self.product_days[(event.customer_id, product)].append(day)
                products.add((event.customer_id, product))
        for customer in customers:
            days = self.order_days[customer]
            order = sorted(range(len(days)), key=days.__getitem__)
            self.order_days[customer] = [days[i] for i in order]
            values = self.order_values[customer]
            self.order_values[customer] = [values[i] for i in order]
        for key in products:
            self.product_days[key].sort()

    def judgeable(self, day: float, horizon: float) -> bool:
        """The data covers the whole horizon after `day`."""
        return day + horizon <= self.last_day

    def next_order_after(self, customer: str, day: float) -> float | None:
        """Day of the customer's first order strictly after `day`."""
        days = self.order_days.get(customer, [])
        i = bisect.bisect_right(days, day)
        return days[i] if i < len(days) else None

    def buys_within(self, customer: str, product: str, day: float,
                    horizon: float) -> float | None:
        """Day the customer buys the product in (day, day + horizon], if they do."""
        days = self.product_days.get((customer, product), [])
        i = bisect.bisect_right(days, day)
        if i < len(days) and days[i] <= day + horizon:
            return days[i]
        return None

    def spend_between(self, customer: str, start: float, end: float) -> float:
        """Order value in (start, end]."""
        days = self.order_days.get(customer, [])
        lo, hi = bisect.bisect_right(days, start), bisect.bisect_right(days, end)
        return sum(self.order_values[customer][lo:hi])

    def churn_episodes(self, horizon: float) -> list[tuple[str, float]]:
        """(customer, last order day) where no order follows within the horizon, judgeable."""
        episodes = []
        for customer, days in self.order_days.items():
            for i, day in enumerate(days):
                if not self.judgeable(day, horizon):
                    break
                nxt = days[i + 1] if i + 1 < len(days) else None
                if nxt is None or nxt - day > horizon:
                    episodes.append((customer, day))
        return episodes

    @property
    def customers(self) -> list[str]:
        """Customers with at least one order."""
        return list(self.order_days)

    def weeks(self) -> float:
        """Length of the data in weeks."""
        return max((self.last_day - self.first_day) / 7.0, 1.0)
