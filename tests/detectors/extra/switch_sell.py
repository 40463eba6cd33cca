"""Switch-sell stories for the contract stream (ids prefixed "switch_sell-").

- SW1, a paper chain kit, is discontinued; the catalogue names SW2 as its substitute.
  S01..S03 order SW1 with gift tags (SW6) every 10 days from day 5: from their third
  order of SW1 the detector suggests SW2 ("discontinued", catalogue substitute). From
  their sixth order they buy SW2 instead, to the end of the stream.
- L01..L05 buy a blue enamel camping mug (SW4) weekly until day 60, then the green one
  (SW5, new to them, same words, similar price) from day 63 to day 395: when SW4 has been
  missing for 60 days they count as having moved from SW4 to SW5.
- L06 buys SW4 weekly from day 300 to the end: by its third order 5 of the 6 regular buyers of SW4
  have stopped, so the detector suggests SW5, learned from L01..L05 ("abandoned").

Everyone orders until the end of the stream, so the stories do not add churners.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sia.events.models import Customer, Event, Order, OrderLine, Product, Return

START = datetime(2023, 1, 2, tzinfo=UTC)
PRODUCTS = {  # id -> (name, unit price, discontinued, substitutes)
    "SW1": ("retro paper chain kit", 2.0, True, ["SW2"]),
    "SW2": ("vintage paper chain kit", 2.2, False, []),
    "SW4": ("blue enamel camping mug", 3.0, False, []),
    "SW5": ("green enamel camping mug", 3.2, False, []),
    "SW6": ("kraft gift tags", 1.0, False, []),
}


def _at(day: float) -> datetime:
    return START + timedelta(days=day)


def events(rng: random.Random) -> list[Event]:
    """The stories above, with a little jitter in the time of day from `rng`."""
    out: list[Event] = []
    t0 = START - timedelta(days=3)
    for product_id, (name, _, discontinued, substitutes) in PRODUCTS.items():
        out.append(Product(event_id=f"switch_sell-prd-{product_id}", occurred_at=t0,
                           product_id=product_id, name=name, discontinued=discontinued,
                           substitutes=substitutes))
    counter = [0]

    def order(customer: str, day: float, products: list[str]) -> Order:
        counter[0] += 1
        n = counter[0]
        return Order(
            event_id=f"switch_sell-ord-{n:04d}",
            occurred_at=_at(day + rng.uniform(0.35, 0.7)), customer_id=customer,
            order_id=f"SWO{n:04d}", currency="GBP",
            lines=[OrderLine(product_id=p, quantity=float(rng.randint(6, 12)),
                             unit_price=PRODUCTS[p][1]) for p in products])

    customers = [f"S0{i}" for i in (1, 2, 3)] + [f"L0{i}" for i in range(1, 7)]
    for customer in customers:
        out.append(Customer(event_id=f"switch_sell-cus-{customer}", occurred_at=t0,
                            customer_id=customer, name=f"Switch {customer} Ltd",
                            segment="smb", region="UK"))
    for i, customer in enumerate(customers[:3]):
        for k in range(39):  # every 10 days to the end of the stream (no one goes silent)
            out.append(order(customer, 5 + i + 10 * k, ["SW1" if k < 5 else "SW2", "SW6"]))
    out.append(Return(event_id="switch_sell-ret-1", occurred_at=_at(40.9), customer_id="S03",
                      order_id="SWR1", currency="GBP",
                      lines=[OrderLine(product_id="SW1", quantity=2.0, unit_price=2.0)]))
    for i, customer in enumerate(customers[3:8]):
        day = float(i % 3)
        while day < 395:
            out.append(order(customer, day, ["SW4" if day < 61 else "SW5", "SW6"]))
            day += 7
    for k in range(14):
        out.append(order("L06", 300 + 7 * k, ["SW4", "SW6"]))
    return out
