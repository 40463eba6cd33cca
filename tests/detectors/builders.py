"""Small builders of canonical events for hand-computed detector tests.

Times are given in days after T0 (midnight UTC), so that the arithmetic in the tests
reads in days.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sia.events.models import Channel, Customer, Interaction, Order, OrderLine, Product, Rep

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T0_DAY = T0.timestamp() / 86_400  # 19723.0: day number of T0 since the epoch

_ids = itertools.count(1)


def at(day: float) -> datetime:
    """T0 plus `day` days."""
    return T0 + timedelta(days=day)


def order(customer: str, day: float, amount: float = 100.0,
          products: Iterable[str] = ("A",), *, quantity: float = 1.0,
          event_id: str | None = None) -> Order:
    """An order worth `amount`, split evenly over the products, in GBP."""
    names = list(products)
    n = next(_ids)
    return Order(
        event_id=event_id or f"o-{customer}-{n}", occurred_at=at(day), customer_id=customer,
        order_id=f"SO-{n}", currency="GBP",
        lines=[OrderLine(product_id=p, quantity=quantity,
                         unit_price=amount / len(names) / quantity) for p in names],
    )


def interaction(customer: str, day: float, channel: Channel = "call",
                sentiment: float | None = None) -> Interaction:
    """A contact with the customer."""
    return Interaction(event_id=f"i-{customer}-{next(_ids)}", occurred_at=at(day),
                       customer_id=customer, channel=channel, sentiment=sentiment)


def rep(rep_id: str, team: str | None, day: float = -30.0) -> Rep:
    """A sales rep in a team."""
    return Rep(event_id=f"rep-{rep_id}-{next(_ids)}", occurred_at=at(day), rep_id=rep_id,
               name=f"Rep {rep_id}", team=team)


def customer(customer_id: str, *, owner: str | None = None, segment: str | None = None,
             name: str | None = None, day: float = -30.0) -> Customer:
    """Reference data of a customer."""
    return Customer(event_id=f"cus-{customer_id}-{next(_ids)}", occurred_at=at(day),
                    customer_id=customer_id, name=name, segment=segment, owner_rep_id=owner)


def product(product_id: str, name: str, day: float = -30.0) -> Product:
    """Reference data of a product."""
    return Product(event_id=f"prd-{product_id}-{next(_ids)}", occurred_at=at(day),
                   product_id=product_id, name=name)
