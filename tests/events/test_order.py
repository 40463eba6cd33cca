"""A file of history in time order (sia/events/order.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sia.events.models import Customer, Event, Order, OrderLine
from sia.events.order import in_time_order

WEEK = timedelta(days=7)


def order(customer: str, day: int, n: int = 0) -> Order:
    return Order(event_id=f"o-{customer}-{day}-{n}", customer_id=customer,
                 order_id=f"{customer}-{day}-{n}",
                 occurred_at=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=day),
                 lines=[OrderLine(product_id="p", quantity=1, unit_price=10.0)])


def customer(name: str, day: int) -> Customer:
    return Customer(event_id=f"c-{name}", customer_id=name, name=name.upper(),
                    occurred_at=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=day))


def ids(events: list[Event]) -> list[str]:
    return [e.event_id for e in events]


def test_a_file_sorted_by_customer_comes_out_in_time_order_with_its_late_events_counted(
) -> None:
    by_customer = [order("a", 0), order("a", 40), order("a", 90),
                   order("b", 5), order("b", 60), order("c", 10)]
    ordered, late = in_time_order(by_customer, WEEK)
    assert ids(ordered) == ["o-a-0-0", "o-b-5-0", "o-c-10-0", "o-a-40-0", "o-b-60-0",
                            "o-a-90-0"]
    # b's orders of days 5 and 60 and c's of day 10 come after a's of day 90
    assert late == 3


def test_a_file_in_time_order_is_unchanged_and_ties_keep_their_order() -> None:
    events = [customer("a", 30), order("a", 0, 1), order("b", 0, 0), order("a", 3)]
    ordered, late = in_time_order(events, WEEK)
    assert ordered == events
    assert late == 0


def test_reference_records_travel_with_the_event_after_them_and_are_never_late() -> None:
    # as an export by customer writes them: each customer's record, then their orders;
    # the record is dated when it was last changed, after the orders
    events = [customer("a", 300), order("a", 50), customer("b", 200), order("b", 10),
              order("b", 70), customer("z", 400)]
    ordered, late = in_time_order(events, WEEK)
    assert ids(ordered) == ["c-b", "o-b-10-0", "c-a", "o-a-50-0", "o-b-70-0", "c-z"]
    assert late == 1  # b's day-10 order, behind a's day 50; the records are not counted


def test_within_the_allowed_lateness_nothing_counts_as_late() -> None:
    ordered, late = in_time_order([order("a", 6), order("b", 0)], WEEK)
    assert ids(ordered) == ["o-b-0-0", "o-a-6-0"]
    assert late == 0
