"""Extra events for the trend detector: customers who heat up, and a burst of quote requests.

Three customers order £100 every 14 days, then, from day 112, 210 and 300 respectively,
every 3 days at £150 for six weeks (spend about seven times their usual), then weekly at
£150 until the end of the stream (they must not look lost to drift); the third also
visits the web shop once a month and then sends eight quote requests in eight days.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sia.events.models import Customer, Event, Interaction, Order, OrderLine

START = datetime(2023, 1, 10, 10, 0, tzinfo=UTC)
SURGES = (112.0, 210.0, 300.0)
END = 388.0  # last day with orders (the shared stream runs to 2024-02-06)


def _at(day: float) -> datetime:
    return START + timedelta(days=day)


def events(rng: random.Random) -> list[Event]:
    """Reference records, orders and interactions of three customers heating up."""
    out: list[Event] = []
    n = 0
    for k in range(1, 4):
        who = f"trend-H{k}"
        out.append(Customer(event_id=f"trend-cus-{k}", occurred_at=START - timedelta(days=5),
                            customer_id=who, name=f"Rising {k} Ltd", segment="smb",
                            region="UK", owner_rep_id="R1"))
        surge = SURGES[k - 1]
        days = [14.0 * i for i in range(int(surge // 14) + 1)]  # every 14 days until the surge
        days += [surge + 3.0 * i for i in range(1, 15)]  # then every 3 days for six weeks
        days += [surge + 42.0 + 7.0 * i for i in range(1, int((END - surge - 42.0) // 7) + 1)]
        for day in days:
            n += 1
            hot = day > surge
            price = round((150.0 if hot else 100.0) * rng.uniform(0.95, 1.05), 2)
            out.append(Order(
                event_id=f"trend-ord-{n:04d}", occurred_at=_at(day + rng.uniform(0, 0.2)),
                customer_id=who, order_id=f"TR{n:04d}", currency="GBP",
                lines=[OrderLine(product_id="P12", quantity=10.0, unit_price=price / 10,
                                 category="office")]))
    for month in range(11):
        n += 1
        out.append(Interaction(event_id=f"trend-int-{n:04d}", occurred_at=_at(30.0 * month + 5),
                               customer_id="trend-H3", channel="web_visit"))
    for i in range(8):
        n += 1
        out.append(Interaction(event_id=f"trend-int-{n:04d}", occurred_at=_at(340.0 + i),
                               customer_id="trend-H3", channel="quote_request"))
    return out
