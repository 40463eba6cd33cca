"""Up-sell stories for the contract stream: a quantity price break, and a tiered catalogue.

Two products are sold cheaper by quantity: up_sell-P1 at 2.00 a unit, 1.70 from 24
units a line; up_sell-P2 at 0.50, 0.42 from 50. Everyone orders until near the end of
the stream (so drift has no one to call overdue here). Every 14 days:

- B1..B3 buy by the break (24 to 48 of P1, 60 of P2): they teach where the breaks are;
- S1..S3 buy small (6 of P1, 10 of P2) at the full price;
- G1 and G2 buy P1 every 10 days from day 30 in growing lines (8, 10, ... 22), G1
  then crosses to 24 from day 130; G3, from day 250, buys P2 in lines of 30 to 45 (the
  learned break is 60, where B1..B3 buy: nobody buys between 50 and 59).

A tiered catalogue: up_sell-T1 (tier "entry", upgrade_to up_sell-T2) and T2 ("premium").
U1..U4 buy T1 every 20 days from day 10; U1 and U2 also buy T2 from day 60 (they
adopt the upgrade), U3 and U4 never do; U5 buys T1 every 10 days from day 280.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sia.events.models import Customer, Event, Order, OrderLine, Product

# loaded with the other extra modules: the stream's start is repeated here, not imported
START = datetime(2023, 1, 2, tzinfo=UTC)
PRICES = {"P1": (2.00, 1.70, 24.0), "P2": (0.50, 0.42, 50.0)}  # usual, break price, break


def at_day(day: float) -> datetime:
    """`day` days after the stream's start, to the second."""
    return START + timedelta(seconds=round(day * 86_400))


def _line(product: str, quantity: float) -> OrderLine:
    usual, cheap, brk = PRICES[product]
    return OrderLine(product_id=f"up_sell-{product}", quantity=quantity,
                     unit_price=cheap if quantity >= brk else usual)


def events(rng: random.Random) -> list[Event]:
    """The stories, deterministic from `rng`."""
    out: list[Event] = [
        Product(event_id="up_sell-prd-P1", occurred_at=START, product_id="up_sell-P1",
                name="up-sell paper cups", category="up_sell", list_price=2.0),
        Product(event_id="up_sell-prd-P2", occurred_at=START, product_id="up_sell-P2",
                name="up-sell napkins", category="up_sell", list_price=0.5),
        Product(event_id="up_sell-prd-T1", occurred_at=START, product_id="up_sell-T1",
                name="up-sell basic plan", category="plans", list_price=300.0,
                tier="entry", upgrade_to=["up_sell-T2"]),
        Product(event_id="up_sell-prd-T2", occurred_at=START, product_id="up_sell-T2",
                name="up-sell pro plan", category="plans", list_price=900.0,
                tier="premium"),
    ]
    names = ("B1", "B2", "B3", "S1", "S2", "S3", "G1", "G2", "G3", "U1", "U2", "U3", "U4",
             "U5")
    for c in names:
        out.append(Customer(event_id=f"up_sell-cus-{c}", occurred_at=START,
                            customer_id=f"up_sell-{c}", name=f"Up-sell {c} Ltd",
                            segment="smb", region="UK", owner_rep_id="R3"))
    n = 0

    def order(customer: str, day: float, lines: list[OrderLine]) -> None:
        nonlocal n
        n += 1
        out.append(Order(event_id=f"up_sell-ord-{n:04d}", occurred_at=at_day(day),
                         customer_id=f"up_sell-{customer}", order_id=f"up_sell-{n:04d}",
                         currency="GBP", lines=lines))

    for i, c in enumerate(("B1", "B2", "B3")):
        for k in range(28):
            order(c, 5.0 + i + 14.0 * k + rng.uniform(0.3, 0.6),
                  [_line("P1", float(rng.choice((24, 36, 48)))), _line("P2", 60.0)])
    for i, c in enumerate(("S1", "S2", "S3")):
        for k in range(28):
            order(c, 7.0 + i + 14.0 * k + rng.uniform(0.3, 0.6),
                  [_line("P1", 6.0), _line("P2", 10.0)])
    for i, c in enumerate(("G1", "G2")):
        for k in range(37):
            quantity = min(8.0 + 2.0 * k, 22.0)
            if c == "G1" and k >= 10:
                quantity = 24.0
            order(c, 30.0 + i + 10.0 * k + rng.uniform(0.3, 0.6), [_line("P1", quantity)])
    for k in range(15):
        order("G3", 250.0 + 10.0 * k + rng.uniform(0.3, 0.6),
              [_line("P2", float(min(30 + 5 * k, 45)))])
    for i, c in enumerate(("U1", "U2", "U3", "U4")):
        for k in range(20):
            day = 10.0 + i + 20.0 * k + rng.uniform(0.3, 0.6)
            lines = [OrderLine(product_id="up_sell-T1", quantity=1.0, unit_price=300.0)]
            if c in ("U1", "U2") and day >= 60.0:
                lines.append(OrderLine(product_id="up_sell-T2", quantity=1.0,
                                       unit_price=900.0))
            order(c, day, lines)
    for k in range(12):
        order("U5", 280.0 + 10.0 * k + rng.uniform(0.3, 0.6),
              [OrderLine(product_id="up_sell-T1", quantity=1.0, unit_price=300.0)])
    return out
