"""A deterministic, synthetic but realistic CRM event stream for detector tests.

About forty customers of a wholesaler, a little over a year of events:

- reference data first: two teams of reps, a product catalogue, customers with
  segments and owner reps (one customer changes owner half way);
- every customer orders on their own rhythm (every 7 to 30 days, with jitter), from
  a "bundle" of products that go together, so co-purchases are shared across
  customers; a quarter of them skip one product of their bundle (cross-sell can
  suggest it);
- some customers stop buying part way through (drift "overdue" from the clock);
- some keep ordering but much smaller and narrower baskets (drift "erosion");
- everyone gets calls and emails; some go quiet and then raise tickets and angry
  emails (drift "engagement"); a few orders are partly returned.

Everything comes from `random.Random(7)`, so two calls give identical events.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sia.events.models import (
    Channel,
    Customer,
    Event,
    Interaction,
    Order,
    OrderLine,
    Product,
    Rep,
    Return,
)

START = datetime(2023, 1, 2, tzinfo=UTC)
DAYS = 400
N_CUSTOMERS = 40

REPS = (("R1", "Ana", "North"), ("R2", "Ben", "North"), ("R3", "Chloe", "South"),
        ("R4", "Dev", "South"))
# product id -> (name, category, list price)
PRODUCTS = {
    "P01": ("a4 copier paper", "office", 4.5),
    "P02": ("black toner cartridge", "office", 38.0),
    "P03": ("box of staples", "office", 2.2),
    "P04": ("coffee beans 1kg", "cafe", 14.0),
    "P05": ("paper coffee filters", "cafe", 3.1),
    "P06": ("takeaway cups x100", "cafe", 6.5),
    "P07": ("floor cleaner 5l", "cleaning", 9.9),
    "P08": ("microfibre cloths", "cleaning", 5.0),
    "P09": ("hand soap refill", "hygiene", 3.8),
    "P10": ("first aid kit", "safety", 21.0),
    "P11": ("desk lamp", "office", 26.0),
    "P12": ("whiteboard markers", "office", 4.0),
}
BUNDLES = (("P01", "P02", "P03"), ("P04", "P05", "P06"), ("P07", "P08", "P09"))
EXTRAS = ("P10", "P11", "P12")
SEGMENTS = ("smb", "enterprise", "export")
RHYTHMS = (7.0, 10.0, 14.0, 21.0, 30.0)

# customer indexes with a planned story (the rest are steady)
CHURNERS = frozenset({0, 5, 10, 15, 20, 25})
ERODERS = frozenset({3, 8, 13, 18})
DISENGAGERS = frozenset({2, 7, 12, 17})


@dataclass(frozen=True)
class Plan:
    """What a customer does over the stream."""

    customer_id: str
    bundle: tuple[str, ...]
    skipped: str | None  # the bundle product this customer never buys
    gap: float
    stop_day: float  # no orders after this day
    erode_day: float  # smaller, narrower orders after this day
    quiet_day: float  # no more friendly contact after this day
    complaint_day: float  # tickets and angry emails from this day


def customer_id(index: int) -> str:
    """C01 ... C40."""
    return f"C{index + 1:02d}"


def plans(rng: random.Random) -> list[Plan]:
    """The story of every customer."""
    out = []
    never = DAYS + 1.0
    for i in range(N_CUSTOMERS):
        bundle = BUNDLES[i % len(BUNDLES)]
        skipped = bundle[rng.randrange(len(bundle))] if i % 4 == 1 else None
        out.append(Plan(
            customer_id=customer_id(i),
            bundle=bundle,
            skipped=skipped,
            gap=rng.choice(RHYTHMS),
            stop_day=rng.uniform(170.0, 230.0) if i in CHURNERS else never,
            erode_day=rng.uniform(200.0, 240.0) if i in ERODERS else never,
            quiet_day=rng.uniform(150.0, 190.0) if i in DISENGAGERS else never,
            complaint_day=rng.uniform(300.0, 330.0) if i in DISENGAGERS else never,
        ))
    return out


def at_day(day: float) -> datetime:
    """Event time `day` days after the start, rounded to the second."""
    return START + timedelta(seconds=round(day * 86_400))


def _reference(rng: random.Random, customer_plans: list[Plan]) -> list[Event]:
    events: list[Event] = []
    t0 = START - timedelta(days=3)
    for rep_id, name, team in REPS:
        events.append(Rep(event_id=f"rep-{rep_id}", occurred_at=t0, rep_id=rep_id,
                          name=name, team=team, email=f"{name.lower()}@example.com"))
    for product_id, (name, category, price) in PRODUCTS.items():
        events.append(Product(event_id=f"prd-{product_id}", occurred_at=t0,
                              product_id=product_id, name=name, category=category,
                              list_price=price))
    for i, plan in enumerate(customer_plans):
        events.append(Customer(
            event_id=f"cus-{plan.customer_id}-1", occurred_at=t0,
            customer_id=plan.customer_id, name=f"Shop {plan.customer_id} Ltd",
            segment=SEGMENTS[i % len(SEGMENTS)], region="UK",
            owner_rep_id=REPS[i % len(REPS)][0],
        ))
    # one customer moves to another rep (and team) half way through
    moved = customer_plans[6]
    events.append(Customer(
        event_id=f"cus-{moved.customer_id}-2", occurred_at=at_day(DAYS / 2),
        customer_id=moved.customer_id, name=f"Shop {moved.customer_id} Ltd",
        segment="enterprise", region="UK", owner_rep_id="R4",
    ))
    return events


def _orders(rng: random.Random, plan: Plan, counter: list[int]) -> list[Event]:
    events: list[Event] = []
    day = rng.uniform(0.0, plan.gap)
    while day < min(DAYS, plan.stop_day):
        eroded = day >= plan.erode_day
        products = [p for p in plan.bundle if p != plan.skipped and rng.random() < 0.92]
        if not products:
            products = [next(p for p in plan.bundle if p != plan.skipped)]
        if rng.random() < 0.15:
            products.append(rng.choice(EXTRAS))
        if eroded:
            products = products[:1]
        lines = []
        for product_id in products:
            price = PRODUCTS[product_id][2] * rng.uniform(0.9, 1.0)
            quantity = float(rng.randint(8, 20))
            if eroded:
                quantity = max(1.0, round(quantity * 0.3))
            lines.append(OrderLine(product_id=product_id, quantity=quantity,
                                   unit_price=round(price, 2)))
        counter[0] += 1
        n = counter[0]
        when = at_day(int(day) + rng.uniform(0.35, 0.7))  # office hours
        events.append(Order(event_id=f"ord-{n:05d}", occurred_at=when,
                            customer_id=plan.customer_id, order_id=f"SO{n:05d}",
                            rep_id=None, currency="GBP", lines=lines))
        if rng.random() < 0.03:
            returned = lines[0]
            events.append(Return(
                event_id=f"ret-{n:05d}", occurred_at=when + timedelta(days=rng.randint(3, 9)),
                customer_id=plan.customer_id, order_id=f"SO{n:05d}", currency="GBP",
                lines=[OrderLine(product_id=returned.product_id, quantity=1.0,
                                 unit_price=returned.unit_price)],
            ))
        day += plan.gap * rng.uniform(0.85, 1.15)
    return events


def _interactions(rng: random.Random, plan: Plan, counter: list[int]) -> list[Event]:
    events: list[Event] = []

    def add(day: float, channel: Channel, sentiment: float | None, summary: str) -> None:
        counter[0] += 1
        events.append(Interaction(
            event_id=f"int-{counter[0]:05d}", occurred_at=at_day(day),
            customer_id=plan.customer_id, channel=channel,
            sentiment=sentiment, summary=summary,
        ))

    day = rng.uniform(0.0, 10.0)
    while day < min(DAYS, plan.quiet_day):
        channels: tuple[Channel, ...] = ("call", "email", "meeting", "email")
        channel = rng.choice(channels)
        add(day, channel, round(rng.uniform(0.0, 0.8), 2), "routine contact")
        day += rng.uniform(6.0, 14.0)
    if plan.complaint_day < DAYS:
        for k in range(3):
            add(plan.complaint_day + 3 * k, "ticket", -0.6, "delivery arrived damaged")
        add(plan.complaint_day + 7.5, "email", -0.8, "unhappy with the service")
    return events


@functools.cache
def synthetic_stream() -> tuple[Event, ...]:
    """The whole stream in event-time order (ties broken by event id); cached, immutable."""
    rng = random.Random(7)
    customer_plans = plans(rng)
    events = _reference(rng, customer_plans)
    orders, contacts = [0], [0]
    for plan in customer_plans:
        events.extend(_orders(rng, plan, orders))
        events.extend(_interactions(rng, plan, contacts))
    events.extend(_extra_events())
    events.sort(key=lambda e: (e.occurred_at, e.event_id))
    return tuple(events)


def _extra_events() -> list[Event]:
    """Events from every module in tests/detectors/extra/, each with its own seeded rng."""
    import importlib
    import pkgutil
    from pathlib import Path

    out: list[Event] = []
    folder = Path(__file__).resolve().parent / "extra"
    for module in sorted(pkgutil.iter_modules([str(folder)]), key=lambda m: m.name):
        source = importlib.import_module(f"{__package__}.extra.{module.name}")
        out.extend(source.events(random.Random(f"extra-{module.name}")))
    return out


def first_order_only(events: tuple[Event, ...]) -> list[Event]:
    """Reference events plus each customer's first order: a stream with no history."""
    seen: set[str] = set()
    out: list[Event] = []
    for event in events:
        if isinstance(event, Order):
            if event.customer_id in seen:
                continue
            seen.add(event.customer_id)
            out.append(event)
        elif event.type in ("customer", "product", "rep"):
            out.append(event)
    return out
