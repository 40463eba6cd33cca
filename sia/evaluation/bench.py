"""`sia bench`: throughput of the engine against the bare detector arithmetic, and state size.

Three loops over the same replay, measured in one run (best of `repeat`):
- engine: Engine.replay with every configured detector, plus policy: what a deployment runs;
- limit: the detectors' learning arithmetic alone (`learn_order`, `learn_until`) fed
  pre-extracted tuples: no pydantic access, no dedup, no dispatch, no detection, no
  explanations, no policy. The engine can never beat it; the ratio says what the engine
  around the arithmetic costs;
- end to end: JSON text -> validation -> engine -> policy, for what a transport sees.
State bytes: each customer's learned state across detectors, pickled.
"""

from __future__ import annotations

import json
import pickle
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from sia.detectors.base import Detector
from sia.detectors.cross_sell import CrossSellDetector
from sia.detectors.drift import DriftDetector
from sia.detectors.rhythm import DAY
from sia.engine.engine import Engine, replay
from sia.events.models import Event, Order, parse_event
from sia.policy import Policy

Factory = Callable[[], tuple[list[Detector[Any]], Policy]]


def _engine_run(events: Sequence[Event], factory: Factory) -> tuple[float, Engine]:
    detectors, policy = factory()
    engine = Engine(detectors)
    started = time.perf_counter()
    for finding in replay(engine, events):
        policy.admit(finding)
    return time.perf_counter() - started, engine


def _end_to_end(lines: Sequence[str], factory: Factory) -> float:
    detectors, policy = factory()
    engine = Engine(detectors)
    started = time.perf_counter()
    for finding in replay(engine, (parse_event(line) for line in lines)):
        policy.admit(finding)
    return time.perf_counter() - started


def _limit_run(events: Sequence[Event], factory: Factory) -> float:
    detectors, _ = factory()
    ctx = Engine([])  # no overrides are installed, so thresholds resolve without lookups
    drift = next((d for d in detectors if isinstance(d, DriftDetector)), None)
    cross = next((d for d in detectors if isinstance(d, CrossSellDetector)), None)
    orders = [
        (e.customer_id, e.occurred_at.timestamp() / DAY, e.amount,
         len({line.product_id for line in e.lines}), e.event_id,
         [(line.product_id, line.unit_price, line.quantity) for line in e.lines])
        for e in events if isinstance(e, Order)
    ]
    started = time.perf_counter()
    next_day = orders[0][1] if orders else 0.0
    for customer, day, amount, breadth, event_id, lines in orders:
        if drift is not None:
            if day >= next_day:
                drift.learn_until(day, ctx)
                next_day = float(int(day) + 1)
            drift.learn_order(customer, day, amount, breadth, event_id, drift.params)
        if cross is not None:
            cross.learn_order(customer, day, lines, cross.params)
    return time.perf_counter() - started


def state_sizes(engine: Engine) -> list[int]:
    """Pickled bytes of each customer's learned state, all detectors together."""
    customers: set[str] = set()
    for detector in engine.detectors:
        customers.update(getattr(detector, "customers", {}) or getattr(detector, "baskets", {}))
    sizes = []
    for customer in sorted(customers):
        states = [d.customer_state(customer) for d in engine.detectors]
        sizes.append(len(pickle.dumps(states, protocol=pickle.HIGHEST_PROTOCOL)))
    return sizes


def bench(events: Sequence[Event], factory: Factory, *, repeat: int = 3) -> dict[str, Any]:
    """Measure, best of `repeat`, the engine, the limit and end to end."""
    lines = [json.dumps(e.model_dump(mode="json")) for e in events]
    engine_s, limit_s, e2e_s = [], [], []
    engine: Engine | None = None
    for _ in range(repeat):
        elapsed, engine = _engine_run(events, factory)
        engine_s.append(elapsed)
        limit_s.append(_limit_run(events, factory))
        e2e_s.append(_end_to_end(lines, factory))
    assert engine is not None
    sizes = sorted(state_sizes(engine))
    n = len(events)
    eps, limit = n / min(engine_s), n / min(limit_s)
    return {
        "events": n,
        "events_per_s": round(eps),
        "limit_events_per_s": round(limit),
        "ratio": round(eps / limit, 3),
        "end_to_end_events_per_s": round(n / min(e2e_s)),
        "state_bytes_per_customer_median": int(statistics.median(sizes)) if sizes else 0,
        "state_bytes_per_customer_p99": sizes[min(len(sizes) - 1, int(0.99 * len(sizes)))]
        if sizes else 0,
        "customers": len(sizes),
        "detectors": [d.name for d in engine.detectors],
        "repeat": repeat,
    }
