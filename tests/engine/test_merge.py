"""The rep stream merged back into event time: what rep partitions learn does not depend
on how workers interleave the customer partitions that feed them."""

from __future__ import annotations

import pickle
import random
from datetime import UTC, datetime, timedelta

import pytest

from sia.detectors.config import load_detectors
from sia.engine.merge import EventTimeMerge
from sia.engine.partitions import (
    PartitionEngine,
    broadcast,
    for_rep,
    partition_for,
    rep_key,
    replay_partitioned,
    split_detectors,
)
from sia.events.models import Event, parse_event
from sia.policy import load_policy

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _call(event_id: str, days: float) -> Event:
    return parse_event({"type": "interaction", "event_id": event_id, "customer_id": "C1",
                        "channel": "call",
                        "occurred_at": (T0 + timedelta(days=days)).isoformat()})


def test_events_wait_until_every_source_has_passed_their_time() -> None:
    merge = EventTimeMerge(sources=2)
    assert merge.add(0, 0, _call("a", 1)) == []  # source 1 has not reported yet
    assert merge.add(0, 1, _call("b", 3)) == []
    ready = merge.add(1, 0, _call("c", 2))  # watermark: min(3, 2) = day 2
    assert [e.event_id for e in ready] == ["a"]
    assert [e.event_id for e in merge.advance(1, T0 + timedelta(days=5))] == ["c"]
    assert merge.watermark == T0 + timedelta(days=3)
    assert [entry[-1].event_id for entry in merge.pending] == ["b"]


def test_equal_times_are_ordered_by_source_then_offset() -> None:
    merge = EventTimeMerge(sources=2)
    merge.add(1, 7, _call("late-source", 1))
    merge.add(0, 9, _call("second", 1))
    merge.add(0, 4, _call("first", 1))
    ready = merge.advance(0, T0 + timedelta(days=2)) + merge.advance(1, T0 + timedelta(days=2))
    assert [e.event_id for e in ready] == ["first", "second", "late-source"]


def test_an_event_below_the_watermark_is_released_at_once_and_counted_late() -> None:
    merge = EventTimeMerge(sources=2)
    merge.advance(0, T0 + timedelta(days=4))
    merge.advance(1, T0 + timedelta(days=4))
    assert [e.event_id for e in merge.add(1, 3, _call("old", 1))] == ["old"]
    assert merge.late == 1


def test_one_source_needs_no_merging() -> None:
    merge = EventTimeMerge(sources=1)
    assert [e.event_id for e in merge.add(0, 0, _call("x", 9))] == ["x"]
    assert merge.pending == []


def test_a_merge_survives_pickling_with_what_it_holds() -> None:
    merge = EventTimeMerge(sources=3)
    merge.add(2, 0, _call("held", 1))
    copy = pickle.loads(pickle.dumps(merge))
    copy.advance(0, T0 + timedelta(days=2))
    copy.advance(1, T0 + timedelta(days=2))
    assert [e.event_id for e in copy.advance(2, T0 + timedelta(days=2))] == ["held"]


def test_an_unknown_source_is_refused() -> None:
    with pytest.raises(ValueError, match="source partition 4"):
        EventTimeMerge(sources=4).advance(4, T0)


# -- the rep stream as Kafka workers feed it -------------------------------------------


def _as_workers_would(events: list[Event], partitions: int, seed: int) -> set[str]:
    """Rep-level alert ids when customer partitions are processed in random batches, in
    a random interleaving, each batch followed by its partition's progress (what the
    `detect` agent does), with the rep partition checkpointed and restored midway."""
    rep_level = split_detectors(load_detectors(None))[1]
    rep_types = {t for d in rep_level for t in d.handles}
    queues: list[list[tuple[int, Event]]] = [[] for _ in range(partitions)]
    for event in events:
        targets = range(partitions) if broadcast(event) else (
            partition_for(getattr(event, "customer_id", "") or "", partitions),)
        for p in targets:
            queues[p].append((len(queues[p]), event))
    parts = [PartitionEngine.new(split_detectors(load_detectors(None))[0], load_policy(None))
             for _ in range(partitions)]
    rep_part = PartitionEngine.new(rep_level, load_policy(None), sources=partitions)
    rng = random.Random(seed)
    alerts: set[str] = set()
    handled = 0
    while any(queues):
        p = rng.choice([i for i, q in enumerate(queues) if q])
        size = rng.randint(1, 400)
        batch, queues[p] = queues[p][:size], queues[p][size:]
        for offset, event in batch:
            parts[p].observe(event)
            if broadcast(event):
                if p == 0:
                    alerts.update(a.alert_id for a in rep_part.observe_from(0, offset, event))
            elif event.type in rep_types:
                rep = rep_key(event, parts[p].engine.catalog, parts[p].links)
                if rep is not None:
                    alerts.update(a.alert_id for a in rep_part.observe_from(
                        p, offset, for_rep(event, rep)))
        assert parts[p].reached is not None
        alerts.update(a.alert_id for a in rep_part.advance(p, parts[p].reached))
        handled += 1
        if handled == 5:  # the rep partition moves to another worker
            rep_part = PartitionEngine.restore(rep_part.checkpoint(), detectors=rep_level,
                                               policy_config=load_policy(None))
    return alerts


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rep_alerts_do_not_depend_on_how_workers_interleave(crm: list[Event],
                                                            seed: int) -> None:
    expected = {a.alert_id for a in replay_partitioned(
        crm, partitions=4, rep_partitions=1, make_detectors=lambda: load_detectors(None),
        policy_config=load_policy(None)) if a.finding.detector == "performance"}
    assert expected, "the sample makes rep-level alerts"
    assert _as_workers_would(crm, 4, seed) == expected
