"""Hardening, input that crashes or corrupts the engine (issue 18): events dated far
ahead or long behind the stream's clock are refused before they move it, and an event
that makes a detector raise is rejected with the reason, rolled back everywhere, and the
run goes on, as if it had never been there."""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from learned import plain  # type: ignore[import-not-found]

from sia.cli.demo import DATASETS, load
from sia.detectors.base import Context, Detector, Params
from sia.detectors.config import load_detectors
from sia.engine.admission import TimeLimits
from sia.engine.engine import FILE_CHUNK, Engine, EventRejected, raise_rejected, replay
from sia.engine.partitions import PartitionEngine, split_detectors
from sia.events.models import Event, Order, OrderLine
from sia.findings import Finding
from sia.policy import Policy, load_policy

Rejects = list[tuple[str, str]]


@pytest.fixture(scope="module")
def retail() -> list[Event]:
    """The bundled online retail sample (7,441 events, a year)."""
    return load(DATASETS[0])[0]


class Poison(Detector[Params]):
    """Raises on the events and tick times it is told to (a bug that some input trips)."""

    name = "poison"
    params_type = Params
    handles = frozenset({"order", "return", "interaction", "opportunity", "customer",
                         "product", "rep"})
    bad_events: ClassVar[frozenset[str]] = frozenset()
    bad_ticks: ClassVar[frozenset[datetime]] = frozenset()

    def __init__(self, **thresholds: Any) -> None:
        super().__init__(**thresholds)
        self.seen = 0  # learned state: what a rollback must put back

    def observe(self, event: Event, ctx: Context) -> list[Finding]:
        self.seen += 1
        if event.event_id in self.bad_events:
            raise ZeroDivisionError(f"poisoned by {event.event_id}")
        return []

    def tick(self, now: datetime, ctx: Context) -> list[Finding]:
        if now in self.bad_ticks:
            raise OverflowError("math range error")
        return []

    def customer_state(self, customer_id: str) -> object | None:
        return None


def run(events: Iterable[Event], *, chunk: int, poison: str = "", bad: Iterable[str] = (),
        engine_options: dict[str, Any] | None = None, journal: int = 1000
        ) -> tuple[list[tuple[str, str, str]], Rejects, Engine]:
    """Alerts (id, subject, explanation) of a replay through every configured detector,
    with `poison` first or last; the rejects, and the engine. A checkpoint every `journal`
    items (the default's 20,000: the sample is rolled back by building its detectors
    again)."""
    Poison.bad_events = frozenset(bad)
    detectors: list[Detector[Any]] = load_detectors(None)
    if poison == "first":
        detectors.insert(0, Poison())
    elif poison == "last":
        detectors.append(Poison())
    rejects: Rejects = []
    engine = Engine(detectors, on_reject=lambda e, why: rejects.append((e.event_id, why)),
                    **(engine_options or {}))
    engine.JOURNAL_LIMIT = journal  # checkpoints on the way: a rollback learns a journal again
    policy = Policy(load_policy(None))
    alerts = []
    for finding in replay(engine, events, chunk=chunk):
        alert = policy.admit(finding)
        if alert is not None:
            alerts.append((alert.alert_id, finding.subject_id, finding.explanation))
    return alerts, rejects, engine


_BASELINES: dict[tuple[int, tuple[str, ...]], tuple[Any, ...]] = {}


def baseline(events: Sequence[Event], chunk: int, without: Iterable[str] = ()
             ) -> tuple[list[tuple[str, str, str]], Any, Engine]:
    """Alerts, learned state and engine of the replay of `events` without the events
    `without` (the run to compare with), computed once per test module."""
    key = (chunk, tuple(sorted(without)))
    if key not in _BASELINES:
        alerts, rejects, engine = run([e for e in events if e.event_id not in key[1]],
                                      chunk=chunk)
        assert rejects == []
        _BASELINES[key] = (alerts, learned(engine), engine)
    return _BASELINES[key]  # type: ignore[return-value]


def learned(engine: Engine) -> Any:
    """Everything the engine's real detectors learned, as plain values (as pickled: what
    detectors derive on demand, caches, is not learned)."""
    return ([plain(pickle.loads(pickle.dumps(d))) for d in engine.detectors
             if d.name != "poison"], plain(engine.catalog))


def dated(event: Event, when: datetime, event_id: str | None = None) -> Event:
    return event.model_copy(update={"occurred_at": when,
                                    "event_id": event_id or event.event_id})


def middle_order(events: Sequence[Event]) -> int:
    """The index of the order half way through the orders (the sample's reference
    records come first)."""
    orders = [i for i, e in enumerate(events) if isinstance(e, Order)]
    return orders[len(orders) // 2]


# --- time ------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, FILE_CHUNK])
def test_an_order_dated_2111_mid_file_is_refused_and_moves_no_clock(
        retail: list[Event], chunk: int) -> None:
    # before: every later event crashed with OverflowError in switch_sell_state (exp of a
    # huge negative elapsed), the run saved nothing
    i = middle_order(retail)
    future = dated(retail[i], datetime(2111, 3, 2, tzinfo=UTC), "from-the-future")
    without, state, clean = baseline(retail, chunk)
    alerts, rejects, engine = run([*retail[:i], future, *retail[i:]], chunk=chunk)
    assert [event_id for event_id, _ in rejects] == ["from-the-future"]
    assert "2111-03-02" in rejects[0][1] and "ahead of the stream's clock" in rejects[0][1]
    assert alerts == without
    assert engine.clock == clean.clock
    assert learned(engine) == state


@pytest.mark.parametrize("chunk", [1, FILE_CHUNK])
def test_an_order_dated_2111_at_the_end_makes_no_storm(retail: list[Event],
                                                       chunk: int) -> None:
    # before: the run "succeeded" with a storm of drift and performance alerts dated 2076
    future = dated(retail[middle_order(retail)], datetime(2111, 3, 2, tzinfo=UTC), "late-2111")
    without, _, _ = baseline(retail, chunk)
    alerts, rejects, _ = run([*retail, future], chunk=chunk)
    assert [event_id for event_id, _ in rejects] == ["late-2111"]
    assert alerts == without


@pytest.mark.parametrize("chunk", [1, FILE_CHUNK])
def test_an_event_a_year_late_is_refused_not_learned(retail: list[Event], chunk: int) -> None:
    # before: accepted silently, learned with decayed state run a year backwards
    i = middle_order(retail)
    late = dated(retail[i], retail[i].occurred_at - timedelta(days=365), "a-year-late")
    without, state, _ = baseline(retail, chunk)
    alerts, rejects, engine = run([*retail[:i + 50], late, *retail[i + 50:]], chunk=chunk)
    assert [event_id for event_id, _ in rejects] == ["a-year-late"]
    assert "behind the stream's clock" in rejects[0][1]
    assert "run decayed state backwards" in rejects[0][1]
    assert alerts == without
    assert learned(engine) == state


def test_events_within_the_bounds_are_learned_late_or_ahead(retail: list[Event]) -> None:
    i = middle_order(retail)
    at = retail[i].occurred_at
    slightly = [dated(retail[i], at - timedelta(days=6), "six-days-late"),
                dated(retail[i], at + timedelta(days=80), "eighty-days-ahead")]
    _, rejects, engine = run([*retail[:i + 1], *slightly], chunk=1)
    assert rejects == []
    assert engine.observed == i + 3


def test_reference_records_may_be_old_but_not_from_the_future(retail: list[Event]) -> None:
    products = [e for e in retail if e.type == "product"]
    orders = [e for e in retail if e.type == "order"]
    old = dated(products[0], orders[-1].occurred_at - timedelta(days=900), "old-record")
    future = dated(products[1], datetime(2111, 1, 1, tzinfo=UTC), "future-record")
    _, rejects, engine = run([*orders[:100], old, future], chunk=1)
    assert [event_id for event_id, _ in rejects] == ["future-record"]
    assert products[0].product_id in engine.catalog.products


def test_the_default_bounds_refuse_nothing_in_the_bundled_datasets() -> None:
    for data in DATASETS:
        events = load(data)[0]
        engine = Engine(load_detectors(None), on_reject=raise_rejected)
        for _ in replay(engine, events, chunk=FILE_CHUNK):
            pass
        assert engine.rejected == 0, data.title


def test_with_a_wall_clock_the_future_is_a_day_and_silence_is_no_gap() -> None:
    now = datetime(2024, 6, 1, 12, tzinfo=UTC)
    rejects: Rejects = []
    engine = Engine([Poison()], wall_clock=lambda: now,
                    on_reject=lambda e, why: rejects.append((e.event_id, why)))
    engine.observe(order_event("first", now - timedelta(days=400)))
    engine.observe(order_event("after-a-silence", now - timedelta(days=1)))  # 399 days on
    engine.observe(order_event("tomorrow", now + timedelta(hours=23)))
    engine.observe(order_event("the-day-after", now + timedelta(days=1, minutes=1)))
    assert [event_id for event_id, _ in rejects] == ["the-day-after"]
    assert "ahead of the wall clock 2024-06-01T12:00:00+00:00" in rejects[0][1]


def test_time_limits_are_the_engines_to_choose() -> None:
    limits = TimeLimits(max_ahead=timedelta(hours=1), max_late=timedelta(days=1),
                        max_gap=timedelta(days=2))
    rejects: Rejects = []
    engine = Engine([Poison()], time_limits=limits,
                    on_reject=lambda e, why: rejects.append((e.event_id, why)))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for event_id, day in [("a", 0), ("b", 3), ("c", 1.5), ("d", 0.4)]:
        engine.observe(order_event(event_id, start + timedelta(days=day)))
    assert [event_id for event_id, _ in rejects] == ["b", "d"]
    assert "more than 2 days ahead" in rejects[0][1]
    assert "more than 1 day behind" in rejects[1][1]


def test_a_refused_event_is_not_seen_and_may_come_again_corrected() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rejects: Rejects = []
    engine = Engine([Poison()], on_reject=lambda e, why: rejects.append((e.event_id, why)))
    engine.observe(order_event("a", start))
    engine.observe(order_event("typo", datetime(2124, 1, 2, tzinfo=UTC)))
    engine.observe(order_event("typo", start + timedelta(days=1)))
    assert [event_id for event_id, _ in rejects] == ["typo"]
    assert (engine.observed, engine.duplicates, engine.rejected) == (2, 0, 1)


def test_a_partition_refuses_before_it_ticks() -> None:
    part = PartitionEngine.new([Poison()], load_policy(None))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    part.observe(order_event("a", start))
    ticked = part.next_tick
    with pytest.raises(EventRejected, match="ahead of the stream's clock"):
        part.observe(order_event("future", datetime(2111, 1, 1, tzinfo=UTC)))
    assert part.next_tick == ticked
    run_ = [order_event("b", start + timedelta(hours=1)),
            order_event("future-2", datetime(2111, 1, 1, tzinfo=UTC)),
            order_event("c", start + timedelta(hours=2))]
    assert [slice_ for slice_ in part.runs(run_)] == [slice(0, 3)]
    with pytest.raises(EventRejected):
        part.observe_run(run_)
    assert part.next_tick == ticked and part.engine.observed == 1


def test_a_partition_waiting_at_a_boundary_holds_events_and_judges_them_on_release() -> None:
    # with shared population models a partition waits at a tick boundary until the
    # others are complete through it, and holds what comes meanwhile (a Kafka batch can
    # bring months of it). Before: the held events were judged by the clock stuck at the
    # boundary, and everything more than 92 days past it went to the dead letters.
    customer_level, _ = split_detectors(load_detectors(None))
    part = PartitionEngine.new(customer_level, load_policy(None))
    exchange = part.share_population(1, 2)
    start = datetime(2024, 1, 1, 9, tzinfo=UTC)
    part.observe(order_event("e0", start))
    part.tick_until(start + timedelta(days=1))  # partition 0 said nothing yet: it waits
    assert part.waiting and not part.held
    events = [order_event(f"e{day}", start + timedelta(days=day)) for day in range(1, 200)]
    for run in part.runs(events):
        part.observe_run(events[run])
    assert len(part.held) == 199 and part.engine.rejected == 0
    exchange.receive(0, [], int((start + timedelta(days=400)).timestamp()))
    part.release()
    assert not part.held and part.engine.rejected == 0 and part.engine.observed == 200


def order_event(event_id: str, when: datetime, customer: str = "c1") -> Order:
    return Order(event_id=event_id, occurred_at=when, customer_id=customer, order_id=event_id,
                 lines=[OrderLine(product_id="p1", quantity=1, unit_price=2.0)])


# --- a detector that raises --------------------------------------------------------


def poisoned(events: Sequence[Event]) -> list[str]:
    """Four events at different places: orders, a reference record, back to back."""
    orders = [i for i, e in enumerate(events) if isinstance(e, Order)]
    picks = [orders[len(orders) // 3], orders[len(orders) // 2], orders[len(orders) // 2 + 1],
             len(events) // 5]
    return [events[i].event_id for i in picks]


@pytest.mark.parametrize(("chunk", "poison", "journal"), [
    (1, "last", 1000), (FILE_CHUNK, "last", 1000), (FILE_CHUNK, "first", 1000),
    (FILE_CHUNK, "last", Engine.JOURNAL_LIMIT)])
def test_an_event_that_makes_a_detector_raise_is_rolled_back_everywhere(
        retail: list[Event], chunk: int, poison: str, journal: int,
        caplog: pytest.LogCaptureFixture) -> None:
    # before: the exception ended the run, and nothing was saved. Last, the detector
    # raises after every other one learned the event (and, learning a file detector
    # after detector, after they learned the rest of the run too); observe (chunk 1) and
    # observe_many reject alike
    bad = poisoned(retail)
    without, state, clean = baseline(retail, chunk, bad)
    with caplog.at_level(logging.ERROR, logger="sia.engine"):
        alerts, rejects, engine = run(retail, chunk=chunk, poison=poison, bad=bad,
                                      journal=journal)
    assert sorted(rejects) == sorted(
        (event_id, f"detector poison raised ZeroDivisionError: poisoned by {event_id}")
        for event_id in bad)
    assert alerts == without
    assert learned(engine) == state
    assert (engine.observed, engine.clock) == (clean.observed, clean.clock)
    failures = [r for r in caplog.records if r.name == "sia.engine" and r.exc_info]
    assert len(failures) == len(bad)
    assert all("ZeroDivisionError" in r.getMessage() for r in failures)
    poison_detector = engine.detectors[0 if poison == "first" else -1]
    assert isinstance(poison_detector, Poison)
    # what it saw: every event it handles, once, but the four it raised on
    assert poison_detector.seen == clean.observed


def test_a_real_detector_crash_is_isolated(retail: list[Event]) -> None:
    # an order that bypassed the contract (model_construct): 1e308 units overflow in the
    # detectors; the order is rejected naming the detector, the rest is learned
    i = middle_order(retail)
    order = retail[i]
    assert isinstance(order, Order)
    line = OrderLine.model_construct(product_id=order.lines[0].product_id, quantity=1e308,
                                     unit_price=1e307)
    huge = Order.model_construct(**{**dict(order), "event_id": "huge", "lines": [line]})
    without, _, _ = baseline(retail, FILE_CHUNK)
    alerts, rejects, _ = run([*retail[:i], huge, *retail[i:]], chunk=FILE_CHUNK)
    assert [event_id for event_id, _ in rejects] == ["huge"]
    assert rejects[0][1].startswith("detector ") and "Error" in rejects[0][1]
    assert alerts == without


def test_a_hook_that_raises_stops_after_everything_before_it(retail: list[Event]) -> None:
    bad = poisoned(retail)[:1]
    k = next(i for i, e in enumerate(retail) if e.event_id == bad[0])
    Poison.bad_events = frozenset(bad)
    engine = Engine([*load_detectors(None), Poison()], on_reject=raise_rejected)
    engine.JOURNAL_LIMIT = 1000
    with pytest.raises(EventRejected, match="detector poison raised ZeroDivisionError"):
        for event in retail:
            engine.observe(event)
    Poison.bad_events = frozenset()
    before = Engine([*load_detectors(None), Poison()])
    for event in retail[:k]:
        before.observe(event)
    assert learned(engine) == learned(before)
    assert engine.observed == before.observed == k


def test_a_tick_that_raises_is_skipped_by_that_detector_only(
        retail: list[Event], caplog: pytest.LogCaptureFixture) -> None:
    days = sorted({e.occurred_at.date() for e in retail})
    bad = datetime.combine(days[len(days) // 2], datetime.min.time(), tzinfo=UTC)
    Poison.bad_ticks = frozenset({bad})
    try:
        without, state, _ = baseline(retail, FILE_CHUNK)
        with caplog.at_level(logging.ERROR, logger="sia.engine"):
            alerts, rejects, engine = run(retail, chunk=FILE_CHUNK, poison="last")
    finally:
        Poison.bad_ticks = frozenset()
    assert rejects == [] and engine.tick_failures == 1
    assert alerts == without
    assert learned(engine) == state
    assert any("poison raised OverflowError on the tick" in r.getMessage()
               for r in caplog.records)


def test_without_a_hook_rejects_are_logged_and_counted(
        caplog: pytest.LogCaptureFixture) -> None:
    Poison.bad_events = frozenset({"b"})
    engine = Engine([Poison()])
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with caplog.at_level(logging.WARNING, logger="sia.engine"):
        for event_id, day in [("a", 0), ("b", 1), ("c", 2), ("old", -30)]:
            engine.observe(order_event(event_id, start + timedelta(days=day)))
    Poison.bad_events = frozenset()
    assert (engine.observed, engine.rejected) == (2, 2)
    assert engine.detectors[0].seen == 2  # b rolled back
    messages = [r.getMessage() for r in caplog.records]
    assert any("event b rejected: detector poison raised" in m for m in messages)
    assert any(m.startswith("event old refused: occurred_at") for m in messages)


def test_a_flood_of_failures_in_one_run_is_rejected_event_by_event() -> None:
    # a detector that raises on every other event, last (after the others learned the
    # whole run): before, each failure recursed into the rest of the run (RecursionError
    # after about 200), and learned the rest of the run again (quadratic: 50 s here)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    events = [order_event(f"e{i}", start + timedelta(minutes=i), customer=f"c{i % 50}")
              for i in range(1200)]
    Poison.bad_events = frozenset(e.event_id for e in events[1::2])
    engine = Engine([*load_detectors(None), Poison()], on_reject=lambda e, why: None)
    started = time.process_time()
    try:
        engine.observe_many(events[:200])
        engine.observe_many(events[200:])
    finally:
        Poison.bad_events = frozenset()
    assert engine.rejected == 600 and engine.observed == 600
    assert engine.detectors[-1].seen == 600
    assert time.process_time() - started < 30


def test_isolation_off_lets_the_exception_through() -> None:
    Poison.bad_events = frozenset({"b"})
    engine = Engine([Poison()], isolate=False)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    engine.observe(order_event("a", start))
    with pytest.raises(ZeroDivisionError):
        engine.observe(order_event("b", start))
    Poison.bad_events = frozenset()


def test_the_journal_since_the_checkpoint_is_bounded() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    Poison.bad_events = frozenset({"e23"})
    engine = Engine([Poison()], on_reject=lambda e, why: None)
    engine.JOURNAL_LIMIT, engine.CHECKPOINT_SHARE = 10, 0.0
    for i in range(25):
        engine.observe(order_event(f"e{i}", start + timedelta(hours=i)))
        assert len(engine._journal) <= 10
    Poison.bad_events = frozenset()
    assert engine.detectors[0].seen == 24 and engine.rejected == 1
