"""`sia bench`: throughput of the engine against the bare detector arithmetic, and state size.

Three loops over the same replay, measured in one run (best of `repeat`):
- engine: Engine.replay with every configured detector, plus policy: what a deployment runs;
- limit: each detector's learning arithmetic alone (`Detector.bare_arithmetic`), fed
  pre-extracted tuples: no pydantic access, no dedup, no dispatch, no detection, no
  explanations, no policy. The engine can never beat it; the ratio says what the engine
  around the arithmetic costs;
- end to end: JSON text -> validation -> engine -> policy, for what a transport sees.
State bytes: each customer's learned state across detectors, pickled.

Times are the process's CPU seconds (one thread): on a machine shared with other work,
time spent waiting for a core is not the engine's. Every timed loop starts with what
was prepared before it (the events, the limit's extracted tuples: 1.7 million objects
on online retail) moved out of the garbage collector's sight (`gc.freeze`). A
deployment never holds a whole replay in memory, and a full collection that walks those
inputs costs about half a second here: the limit used to pay two of them, the engine
one.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import pickle
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sia.detectors.base import Detector
from sia.engine.embedded import alerts_of
from sia.engine.engine import FILE_CHUNK, Engine
from sia.events.models import Event, parse_event
from sia.policy import Policy

Factory = Callable[[], tuple[list[Detector[Any]], Policy]]


def _forget_derived(events: Sequence[Event]) -> None:
    """Drop what an earlier run cached on the events (`Order.priced_lines`, `day`, ...):
    a deployment computes those once for every new event, so each timed engine run must
    too, not only the first of `repeat`."""
    names: dict[type, tuple[str, ...]] = {}
    for event in events:
        kind = type(event)
        cached = names.get(kind)
        if cached is None:
            cached = names[kind] = tuple(
                name for cls in kind.__mro__ for name, value in vars(cls).items()
                if isinstance(value, functools.cached_property))
        for name in cached:
            event.__dict__.pop(name, None)


@contextlib.contextmanager
def _inputs_frozen() -> Iterator[None]:
    """Time a loop without the collector walking what was prepared for it (see above)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _engine_run(events: Sequence[Event], factory: Factory) -> tuple[float, Engine]:
    detectors, policy = factory()
    engine = Engine(detectors)
    _forget_derived(events)
    with _inputs_frozen():
        started = time.process_time()
        for _ in alerts_of(events, engine=engine, policy=policy, chunk=FILE_CHUNK):
            pass
        return time.process_time() - started, engine


def _end_to_end(lines: Sequence[str], factory: Factory) -> float:
    detectors, policy = factory()
    engine = Engine(detectors)
    with _inputs_frozen():
        started = time.process_time()
        for _ in alerts_of((parse_event(line) for line in lines), engine=engine,
                           policy=policy, chunk=FILE_CHUNK):
            pass
        return time.process_time() - started


def _limit_run(events: Sequence[Event], factory: Factory) -> tuple[float, list[str]]:
    """Seconds of every detector's bare arithmetic; names of those without one."""
    detectors, _ = factory()
    loops, missing = [], []
    for detector in detectors:
        loop = detector.bare_arithmetic(events)  # extraction is not timed
        if loop is None:
            missing.append(detector.name)
        else:
            loops.append(loop)
    with _inputs_frozen():
        started = time.process_time()
        for loop in loops:
            loop()
        return time.process_time() - started, missing


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
    without_limit: list[str] = []
    for _ in range(repeat):
        elapsed, engine = _engine_run(events, factory)
        engine_s.append(elapsed)
        seconds, without_limit = _limit_run(events, factory)
        limit_s.append(seconds)
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
        "detectors_without_limit": without_limit,
        "repeat": repeat,
    }
