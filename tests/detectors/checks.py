"""Contract checks every detector must pass, in the manner of river's `utils.estimator_checks`.

Each check takes a detector class and an event stream, builds fresh detectors with
`cls(**cls.unit_test_params())`, drives them the way the engine does (reference events
into a catalog, events of a handled type to `observe`, a `tick` at each midnight the
stream crosses) and asserts one property. `test_contract.py` runs every check on every
registered detector.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from sia.catalog import Catalog
from sia.detectors.base import Detector
from sia.engine import state_codec
from sia.events.models import Customer, Event, Product, Rep
from sia.findings import Finding

DetectorClass = type[Detector[Any]]
Step = tuple[str, Any]  # ("event", Event) or ("tick", datetime)
Emitted = tuple[int, Finding]  # index of the step that produced it, and the finding


class StreamContext:
    """The smallest Context: a catalog fed with reference events."""

    def __init__(self) -> None:
        self.catalog = Catalog()

    def scope_of(self, customer_id: str) -> tuple[str | None, str | None]:
        """(team, segment) from the catalog."""
        return self.catalog.team_of(customer_id), self.catalog.segment_of(customer_id)


def fresh(cls: DetectorClass) -> Detector[Any]:
    """A detector with the thresholds meant for unit tests."""
    return cls(**cls.unit_test_params())


def steps_of(events: Iterable[Event]) -> list[Step]:
    """Events interleaved with a tick at every midnight (UTC) the stream crosses."""
    out: list[Step] = []
    next_tick: datetime | None = None
    for event in events:
        at = event.occurred_at
        if next_tick is None:
            next_tick = at.replace(hour=0, minute=0, second=0, microsecond=0)
            while next_tick <= at:
                next_tick += timedelta(days=1)
        while at >= next_tick:
            out.append(("tick", next_tick))
            next_tick += timedelta(days=1)
        out.append(("event", event))
    if next_tick is not None:
        for _ in range(120):  # keep the clock running after the last event: absence speaks
            out.append(("tick", next_tick))
            next_tick += timedelta(days=1)
    return out


def drive(detector: Detector[Any], ctx: StreamContext, steps: Sequence[Step],
          start: int = 0, *, on_event: Callable[[Event, list[Finding]], None] | None = None
          ) -> list[Emitted]:
    """Run steps[start:] through the detector; returns (step index, finding) pairs."""
    out: list[Emitted] = []
    for index in range(start, len(steps)):
        kind, item = steps[index]
        if kind == "tick":
            findings = detector.tick(item, ctx)
        else:
            if isinstance(item, Customer | Product | Rep):
                ctx.catalog.update(item)
            findings = detector.observe(item, ctx) if item.type in detector.handles else []
            if on_event is not None:
                on_event(item, findings)
        out.extend((index, f) for f in findings)
    return out


def as_dicts(emitted: Iterable[Emitted]) -> list[tuple[int, dict[str, Any]]]:
    """Comparable form of what a run emitted."""
    return [(index, f.to_dict()) for index, f in emitted]


def run_all(cls: DetectorClass, events: Sequence[Event]) -> list[Emitted]:
    """One full run on a fresh detector."""
    return drive(fresh(cls), StreamContext(), steps_of(events))


# -- the checks -------------------------------------------------------------------------


def check_emits_findings(cls: DetectorClass, events: Sequence[Event]) -> None:
    """The stream makes the detector speak, so the other checks are not vacuous."""
    emitted = run_all(cls, events)
    assert emitted, f"{cls.name} produced no finding on the synthetic stream"
    assert len({f.subject_id for _, f in emitted}) >= 2, "findings about a single customer only"


def check_pickle_mid_stream(cls: DetectorClass, events: Sequence[Event]) -> None:
    """State pickled part way and restored gives the same findings on the rest."""
    steps = steps_of(events)
    reference = as_dicts(drive(fresh(cls), StreamContext(), steps))
    for fraction in (0.35, 0.7):
        split = int(len(steps) * fraction)
        detector, ctx = fresh(cls), StreamContext()
        before = drive(detector, ctx, steps[:split])
        blob = pickle.dumps((detector, ctx), protocol=pickle.HIGHEST_PROTOCOL)
        del detector, ctx
        restored, restored_ctx = pickle.loads(blob)
        assert type(restored) is cls
        after = drive(restored, restored_ctx, steps, start=split)
        assert as_dicts(before) == [r for r in reference if r[0] < split]
        assert as_dicts(after) == [r for r in reference if r[0] >= split], (
            f"{cls.name}: findings differ after restoring a snapshot taken at step {split}")
        assert any(r[0] >= split for r in reference), "nothing left to compare after the split"


def check_state_codec_mid_stream(cls: DetectorClass, events: Sequence[Event]) -> None:
    """State saved part way through the state codec (what snapshots and Kafka checkpoints
    are written with: sia/engine/state_codec.py) and restored from it gives the same
    findings on the rest: every class the detector keeps is on the codec's allowlist and
    round-trips field for field, and the restored state is stable (saving it again
    writes the same document, sets aside)."""
    steps = steps_of(events)
    reference = as_dicts(drive(fresh(cls), StreamContext(), steps))
    for fraction in (0.35, 0.7):
        split = int(len(steps) * fraction)
        detector, ctx = fresh(cls), StreamContext()
        before = drive(detector, ctx, steps[:split])
        blob = state_codec.dumps((detector, ctx.catalog))
        del detector, ctx
        restored, catalog = state_codec.loads(blob)
        assert type(restored) is cls
        restored_ctx = StreamContext()
        restored_ctx.catalog = catalog
        assert _without_sets(state_codec.dumps((restored, catalog))) == _without_sets(blob)
        after = drive(restored, restored_ctx, steps, start=split)
        assert as_dicts(before) == [r for r in reference if r[0] < split]
        assert as_dicts(after) == [r for r in reference if r[0] >= split], (
            f"{cls.name}: findings differ after restoring state-codec state taken at "
            f"step {split}")


def _without_sets(document: bytes) -> Any:
    """A state-codec document with each set's items sorted (a set rebuilt from its items
    may iterate in another order; nothing may depend on it)."""
    import json

    def canon(node: Any) -> Any:
        if isinstance(node, list):
            return [canon(n) for n in node]
        if isinstance(node, dict):
            out = {k: canon(v) for k, v in node.items()}
            for tag in ("s", "fs"):
                if tag in out:
                    out[tag] = sorted(out[tag], key=repr)
            return out
        return node

    return canon(json.loads(document))


def check_deterministic(cls: DetectorClass, events: Sequence[Event]) -> None:
    """The same stream gives the same findings, field for field."""
    first = as_dicts(run_all(cls, events))
    second = as_dicts(run_all(cls, events))
    assert first == second


def check_does_not_mutate_events(cls: DetectorClass, events: Sequence[Event]) -> None:
    """observe leaves the events as it found them (frozen models, and their lists too)."""
    detector, ctx = fresh(cls), StreamContext()
    copies = [copy.deepcopy(e) for e in events]
    before = [e.model_dump() for e in events]
    list_fields = [
        {name: (id(value), len(value)) for name, value in e if isinstance(value, list)}
        for e in events
    ]
    drive(detector, ctx, steps_of(events))
    assert [e.model_dump() for e in events] == before
    assert list(events) == copies
    assert [
        {name: (id(value), len(value)) for name, value in e if isinstance(value, list)}
        for e in events
    ] == list_fields


def check_silent_while_warming_up(cls: DetectorClass, events: Sequence[Event]) -> None:
    """A customer's first event says nothing; one order per customer never speaks."""
    from .streams import first_order_only

    detector, ctx = fresh(cls), StreamContext()
    met: set[str] = set()
    spoke_first: list[str] = []

    def first_event(event: Event, findings: list[Finding]) -> None:
        customer = getattr(event, "customer_id", None)
        if customer is None or isinstance(event, Customer) or customer in met:
            return
        met.add(customer)
        if findings:
            spoke_first.append(f"{customer}: {findings[0].title}")

    drive(detector, ctx, steps_of(events), on_event=first_event)
    assert len(met) >= 30
    assert not spoke_first, f"{cls.name} spoke on a customer's first event: {spoke_first}"

    single = first_order_only(tuple(events))
    assert sum(e.type == "order" for e in single) >= 30
    emitted = drive(fresh(cls), StreamContext(), steps_of(single))
    assert not emitted, f"{cls.name} spoke with one order per customer: {emitted[0][1].title}"


def check_findings_well_formed(cls: DetectorClass, events: Sequence[Event]) -> None:
    """Every finding is complete, explained with numbers, and points at observed events."""
    detector, ctx = fresh(cls), StreamContext()
    observed: set[str] = set()
    bad: list[str] = []
    steps = steps_of(events)
    emitted: list[Finding] = []
    for index in range(len(steps)):
        kind, item = steps[index]
        if kind == "event" and item.type in detector.handles:
            observed.add(item.event_id)
        for _, finding in drive(detector, ctx, steps[index:index + 1]):
            emitted.append(finding)
            missing = [e for e in finding.evidence if e not in observed]
            if missing:
                bad.append(f"{finding.dedup_key}: evidence {missing} not observed yet")
    assert emitted
    for f in emitted:
        assert f.detector == cls.name
        assert 0.0 <= f.score <= 1.0
        assert f.title.strip() and f.explanation.strip() and f.action.strip()
        assert f.kind and f.subject_id and f.dedup_key
        assert re.search(r"\d", f.explanation), f"no number in {f.explanation!r}"
        assert f.evidence, f"no evidence for {f.dedup_key}"
        assert f.occurred_at.tzinfo is not None
        assert f.occurred_at.utcoffset() is not None
        assert f.value >= 0.0
        assert f.to_dict()["occurred_at"] == f.occurred_at.isoformat()
    assert not bad, bad[:5]
    keys = [f.dedup_key for f in emitted]
    again = [f.dedup_key for _, f in run_all(cls, events)]
    assert keys == again, "dedup keys differ between two replays of the same stream"


def check_customer_state(cls: DetectorClass, events: Sequence[Event]) -> None:
    """None for strangers; for customers seen, something picklable that the state codec
    saves and restores."""
    detector, ctx = fresh(cls), StreamContext()
    assert detector.customer_state("C01") is None
    drive(detector, ctx, steps_of(events[: len(events) // 2]))
    assert detector.customer_state("nobody-we-know") is None
    known = sorted({e.customer_id for e in events[: len(events) // 2]
                    if e.type in detector.handles and hasattr(e, "customer_id")})
    assert known
    for customer in known:
        state = detector.customer_state(customer)
        assert state is not None, customer
        clone = pickle.loads(pickle.dumps(state))
        assert type(clone) is type(state)
        assert pickle.dumps(clone) == pickle.dumps(state)
        saved = state_codec.dumps(state)
        again = state_codec.loads(saved)
        assert type(again) is type(state)
        assert _without_sets(state_codec.dumps(again)) == _without_sets(saved)


def check_params_validation(cls: DetectorClass, events: Sequence[Event]) -> None:
    """Every threshold refuses a wrong type with a ValueError that names it."""
    fields = dataclasses.fields(cls.params_type)
    assert fields, f"{cls.name} has no thresholds"
    defaults = cls.params_type()
    for f in fields:
        for wrong in ("high", None, [1]):
            with pytest.raises(ValueError, match=re.escape(f.name)):
                cls(**{f.name: wrong})
        if isinstance(getattr(defaults, f.name), int | float):
            with pytest.raises(ValueError, match=re.escape(f.name)):
                cls(**{f.name: True})  # a bool is not a number here
    for key, value in cls.unit_test_params().items():
        assert getattr(fresh(cls).params, key) == value
    with pytest.raises(TypeError):
        cls(no_such_threshold=1)


def check_population_updates(cls: DetectorClass, events: Sequence[Event]) -> None:
    """A detector that shares population models learns them only from its updates, and
    an update means the same after a trip through JSON (how partitions exchange them):
    learning each update as it comes back from JSON gives the same findings."""
    if not cls.shares_population:
        pytest.skip(f"{cls.name} shares no population model")
    import json

    steps = steps_of(events)
    reference = as_dicts(drive(fresh(cls), StreamContext(), steps))
    detector = fresh(cls)
    made: list[tuple[Any, ...]] = []

    def share(update: tuple[Any, ...]) -> None:
        made.append(update)
        detector.learn_population(tuple(json.loads(json.dumps(update))))

    detector.share = share  # type: ignore[method-assign]
    assert as_dicts(drive(detector, StreamContext(), steps)) == reference
    assert made, f"{cls.name} shares population models but made no update"


def check_learning_at_tick(cls: DetectorClass, events: Sequence[Event]) -> None:
    """What falls due at a tick is learned once: partitions that share population
    models call `learn_at_tick` before `tick`, and that changes no finding and no
    population update (the same ones, in the same order)."""
    steps = steps_of(events)

    def run(early: bool) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[Any, ...]]]:
        detector = fresh(cls)
        made: list[tuple[Any, ...]] = []
        learn = detector.share

        def share(update: tuple[Any, ...]) -> None:
            made.append(update)
            learn(update)

        detector.share = share  # type: ignore[method-assign]
        if early:
            tick = detector.tick

            def learning_first(now: datetime, ctx: Any) -> list[Finding]:
                detector.learn_at_tick(now, ctx)
                return tick(now, ctx)

            detector.tick = learning_first  # type: ignore[method-assign]
        return as_dicts(drive(detector, StreamContext(), steps)), made

    assert run(early=True) == run(early=False)


CHECKS: tuple[Callable[[DetectorClass, Sequence[Event]], None], ...] = (
    check_population_updates,
    check_learning_at_tick,
    check_emits_findings,
    check_pickle_mid_stream,
    check_state_codec_mid_stream,
    check_deterministic,
    check_does_not_mutate_events,
    check_silent_while_warming_up,
    check_findings_well_formed,
    check_customer_state,
    check_params_validation,
)
