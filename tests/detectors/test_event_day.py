"""Detectors share `Event.day`: it must be exactly the arithmetic each did on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sia.detectors.rhythm import DAY
from sia.events.models import Interaction, Order, OrderLine


def test_day_is_the_timestamp_in_days_each_detector_computed() -> None:
    zones = (UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30)))
    for zone in zones:
        at = datetime(2011, 3, 7, 13, 45, 21, 123456, tzinfo=zone)
        order = Order(event_id="o1", occurred_at=at, customer_id="c", order_id="o",
                      lines=[OrderLine(product_id="p", quantity=1.0, unit_price=2.0)])
        contact = Interaction(event_id="i1", occurred_at=at, customer_id="c", channel="call")
        assert order.day == at.timestamp() / DAY
        assert contact.day == at.timestamp() / DAY
        assert order.day is order.day  # computed once
