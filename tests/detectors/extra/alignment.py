"""Extra events for the alignment detector: a segment with one customer unlike the rest,
an owner from the wrong team, and a big account nobody calls.

Segment "alignment-home": seven customers order £60 every 25 days and one (A8) orders
£2,000 every 25 days, until the end of the stream, with no call, email or meeting ever
(the rest of the stream has plenty, so contact is being logged). A3 is in region
"North", the name of a team, but its owner R3 is in team South.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sia.events.models import Customer, Event, Order, OrderLine

START = datetime(2023, 1, 12, 11, 0, tzinfo=UTC)


def events(rng: random.Random) -> list[Event]:
    """Reference records and orders of the eight customers."""
    out: list[Event] = []
    n = 0
    for k in range(1, 9):
        who = f"alignment-A{k}"
        out.append(Customer(
            event_id=f"alignment-cus-{k}", occurred_at=START - timedelta(days=7),
            customer_id=who, name=f"Home Desk {k}", segment="alignment-home",
            region="North", owner_rep_id="R3" if k == 3 else "R1"))
        value = 2000.0 if k == 8 else 60.0
        for i in range(16):  # days 0 .. 375, to the end of the shared stream
            n += 1
            out.append(Order(
                event_id=f"alignment-ord-{n:04d}",
                occurred_at=START + timedelta(days=25.0 * i + rng.uniform(0, 0.2)),
                customer_id=who, order_id=f"AL{n:04d}", currency="GBP",
                lines=[OrderLine(product_id="P11", quantity=2.0,
                                 unit_price=round(value / 2 * rng.uniform(0.97, 1.03), 2))]))
    return out
