"""A customer base of rare buyers, drawn from the BG/NBD model fitted to CDNOW.

CDNOW's 23,570 customers, who first bought in the first quarter of 1997 and were
followed for 78 weeks, are the standard example of a base where most customers buy once
or twice (Fader, Hardie and Lee, "Counting your customers the easy way", Marketing
Science 24(2), 2005). The stream drawn here has their shape with the fitted parameters
r = 0.243, alpha = 4.414 (weeks), a = 0.793, b = 2.426: each customer buys at a rate
lambda ~ Gamma(r, 1/alpha) a week while active and, after each repeat purchase, stops
for good with probability p ~ Beta(a, b). Orders carry one line of a single product
(no product detail), no rep and no cost, and fall on whole days, as in CDNOW's file.

`order="customer"` writes the file as CDNOW's is written, sorted by customer: not in
time order (`sia replay --sort` and `sia evaluate` sort it).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sia.importers.online_retail import ImportReport

R, ALPHA, A, B = 0.243, 4.414, 0.793, 2.426  # FHL 2005, CDNOW
START = datetime(1997, 1, 1, tzinfo=UTC)


def rare_buyers(report: ImportReport, *, customers: int = 23_570, weeks: float = 78.0,
                acquired_weeks: float = 12.0, seed: int = 1,
                order: Literal["time", "customer"] = "time") -> Iterator[dict[str, Any]]:
    """Order events of `customers` customers, first buying in the first `acquired_weeks`
    and followed for `weeks`, drawn with `seed` (the same seed, the same stream)."""
    rng = random.Random(seed)
    rows: list[tuple[int, int, int, dict[str, Any]]] = []
    for customer in range(customers):
        rate = rng.gammavariate(R, 1 / ALPHA)  # purchases a week while active
        stop = rng.betavariate(A, B)
        spend = math.exp(rng.gauss(math.log(30.0), 0.6))  # usual order value, USD
        week = rng.uniform(0.0, acquired_weeks)
        number = 0
        while week < weeks:
            day = int(week * 7)
            amount = max(1.0, spend * math.exp(rng.gauss(0.0, 0.4)))
            units = max(1, round(amount / 12.0))
            order_id = f"cdn-{customer}-{number}"
            rows.append((day, customer, number, {
                "type": "order", "event_id": order_id,
                "occurred_at": (START + timedelta(days=day)).isoformat(),
                "customer_id": f"c{customer}", "order_id": order_id, "currency": "USD",
                "lines": [{"product_id": "music", "quantity": units,
                           "unit_price": round(amount / units, 2)}]}))
            number += 1
            if number > 1 and rng.random() < stop:
                break  # gone for good after this repeat purchase
            week += rng.expovariate(rate)
        report.customers += 1
    rows.sort(key=(lambda r: (r[0], r[1], r[2])) if order == "time"
              else (lambda r: (r[1], r[2])))
    for *_, event in rows:
        report.rows += 1
        report.events += 1
        report.orders += 1
        yield event
