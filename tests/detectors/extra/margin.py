"""Margin stories for the contract stream: discount creep, a cost increase, price realisation.

Three customers of rep R1 order every 10 days from day 20 (about 36 orders each):

- margin-C1 buys margin-P1 (list 100, cost 60 in the catalogue only) at about 10% off
  (margin 33%), then from order 13 to 18 at 30% off (margin 14%), then at 10% again:
  a discount creep that recovers;
- margin-C2 buys margin-P1 at 10% off with the cost on each line, 60, then 75 from
  order 13 on (margin 33% then 17%): a cost increase not passed on, until the list
  price goes to 125 from order 27 on (margin 33% again);
- margin-C3 buys margin-P2 (list 50, no cost anywhere) at about 5% off, then 30% off
  for orders 13 to 20 (price realisation) and 29 to 34 (a second alert late in the
  stream, so that findings come after the contract test's last snapshot too).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sia.events.models import Customer, Event, Order, OrderLine, Product

# loaded by path (no package): the stream's start is repeated here, not imported
START = datetime(2023, 1, 2, tzinfo=UTC)


def at_day(day: float) -> datetime:
    """`day` days after the stream's start, to the second."""
    return START + timedelta(seconds=round(day * 86_400))


def events(rng: random.Random) -> list[Event]:
    """The three stories, deterministic from `rng`."""
    out: list[Event] = [
        Product(event_id="margin-prd-P1", occurred_at=START, product_id="margin-P1",
                name="margin test widget", category="margin", list_price=100.0,
                unit_cost=60.0),
        Product(event_id="margin-prd-P2", occurred_at=START, product_id="margin-P2",
                name="margin test gadget", category="margin", list_price=50.0),
    ]
    for c in ("C1", "C2", "C3"):
        out.append(Customer(event_id=f"margin-cus-{c}", occurred_at=START,
                            customer_id=f"margin-{c}", name=f"Margin {c} Ltd",
                            segment="smb", region="UK", owner_rep_id="R1"))
    for k in range(36):
        day = 20.0 + 10.0 * k + rng.uniform(0.3, 0.6)
        late = 12 <= k < 18
        d1 = (0.30 if late else 0.10) + rng.uniform(-0.01, 0.01)
        d2 = 0.10 + rng.uniform(-0.01, 0.01)
        d3 = (0.30 if 12 <= k < 20 or 28 <= k < 34 else 0.05) + rng.uniform(-0.01, 0.01)
        cost2 = 75.0 if k >= 12 else 60.0
        list2 = 125.0 if k >= 26 else 100.0
        for c, line in (
            ("C1", OrderLine(product_id="margin-P1", quantity=10.0,
                             unit_price=round(100.0 * (1 - d1), 2))),
            ("C2", OrderLine(product_id="margin-P1", quantity=10.0,
                             unit_price=round(list2 * (1 - d2), 2), list_price=list2,
                             unit_cost=cost2)),
            ("C3", OrderLine(product_id="margin-P2", quantity=4.0,
                             unit_price=round(50.0 * (1 - d3), 2))),
        ):
            out.append(Order(event_id=f"margin-ord-{c}-{k:02d}", occurred_at=at_day(day),
                             customer_id=f"margin-{c}", order_id=f"M{c}{k:02d}",
                             currency="GBP", lines=[line]))
    return out
