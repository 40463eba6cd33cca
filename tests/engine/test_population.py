"""Population models shared by partitions (sia/engine/population.py): one partition is
the embedded engine; with several, what they find does not depend on how workers
interleave, deliver the updates or restart from checkpoints."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from sia.detectors.config import load_detectors
from sia.engine.engine import Engine, replay
from sia.engine.partitions import (
    PartitionEngine,
    broadcast,
    partition_for,
    replay_partitioned,
    split_detectors,
)
from sia.engine.population import AT_TICK, Outbox, PopulationExchange
from sia.events.models import Event
from sia.policy import Policy, load_policy


def _customer_level() -> list[Any]:
    return split_detectors(load_detectors(None))[0]


def _replayed(events: list[Event], partitions: int, *, share: bool) -> dict[str, str]:
    alerts = replay_partitioned(events, partitions=partitions, rep_partitions=1,
                                make_detectors=_customer_level,
                                policy_config=load_policy(None), share_population=share)
    return {a.alert_id: a.finding.detector for a in alerts}


def test_one_partition_that_shares_finds_what_the_embedded_engine_finds(
        retail: list[Event]) -> None:
    engine, policy = Engine(_customer_level()), Policy(load_policy(None))
    embedded = {a.alert_id: a.finding.detector
                for a in (policy.admit(f) for f in replay(engine, retail, final_tick=False))
                if a is not None}
    assert "drift" in embedded.values()
    assert _replayed(retail, 1, share=True) == embedded


class Recorder:
    """A detector that notes the population updates it learns."""

    def __init__(self) -> None:
        self.applied: list[tuple[Any, ...]] = []

    def learn_population(self, update: tuple[Any, ...]) -> None:
        self.applied.append(update)


def test_updates_are_applied_once_in_one_order_when_all_are_complete() -> None:
    exchange = PopulationExchange(source=0, sources=3)
    recorder = Recorder()
    applied = recorder.applied
    detectors = {"d": recorder}
    exchange.mark_complete(0, 200)
    exchange.receive(2, [(100, 1, "d", ("c",)), (200, 2, "d", ("e",))], complete=200)
    exchange.receive(1, [(100, 1, "d", ("b",))], complete=100)
    assert not exchange.ready(200) and exchange.ready(100)
    assert exchange.apply_through(100, detectors) == 2
    assert applied == [("b",), ("c",)]  # by stamp, then source
    exchange.receive(1, [(100, 1, "d", ("b",)), (200, 2, "d", ("d",))], complete=200)
    assert exchange.ready(200)  # "b" again is a repeat: dropped
    exchange.apply_through(200, detectors)
    assert applied == [("b",), ("c",), ("d",), ("e",)]
    with pytest.raises(ValueError, match="sequence 5 arrived, 3 expected"):
        exchange.receive(1, [(300, 5, "d", ("x",))], complete=None)


def test_updates_whose_messages_are_gone_are_skipped_once_per_partition() -> None:
    # retention deleted population messages a partition never read: each other
    # partition's sequence may then jump once, and what was lost is counted
    exchange = PopulationExchange(source=0, sources=3)
    exchange.receive(1, [(100, 1, "d", ("a",))], complete=None)
    exchange.updates_lost()
    exchange.receive(1, [(200, 4, "d", ("b",))], complete=None)  # 2 and 3 are gone
    exchange.receive(2, [(200, 1, "d", ("c",))], complete=None)  # nothing lost from 2
    assert exchange.lost == 2 and exchange._next_seq == [1, 5, 2]
    with pytest.raises(ValueError, match="sequence 7 arrived, 5 expected"):
        exchange.receive(1, [(300, 7, "d", ("x",))], complete=None)  # once only
    with pytest.raises(ValueError, match="sequence 3 arrived, 2 expected"):
        exchange.receive(2, [(300, 3, "d", ("y",))], complete=None)


def test_the_outbox_stamps_each_update_with_the_boundary_it_comes_before() -> None:
    outbox = Outbox()
    outbox.stamp = 86400
    outbox.append(("drift", ("gap", 1.0)))
    outbox.stamp = 2 * 86400
    outbox.append(("drift", ("spend", 5.0)))
    assert list(outbox) == [(86400, 1, "drift", ("gap", 1.0)),
                            (2 * 86400, 2, "drift", ("spend", 5.0))]


def test_what_falls_due_at_a_tick_is_learned_after_the_day_by_every_partition() -> None:
    # one engine learns the silences that ran their course right before it predicts:
    # partitions learn every partition's, their own included, after the day's updates
    exchange = PopulationExchange(source=1, sources=3)
    recorder = Recorder()
    applied = recorder.applied
    exchange.outbox.stamp = 100 + AT_TICK
    exchange.outbox.defer = True
    exchange.outbox.append(("d", ("own at tick",)))
    exchange.defer_own(100 + AT_TICK)
    exchange.mark_complete(1, 100)
    exchange.receive(2, [(100, 1, "d", ("c day",)), (101, 2, "d", ("c at tick",)),
                         (200, 3, "d", ("c next day",))], complete=100)
    exchange.receive(0, [(100, 1, "d", ("a day",)), (101, 2, "d", ("a at tick",))],
                     complete=100)
    assert exchange.apply_through(100, {"d": recorder}) == 5
    assert applied == [("a day",), ("c day",), ("a at tick",), ("own at tick",),
                       ("c at tick",)]
    assert [item[0] for item in exchange.take_outgoing()] == [101]  # sent all the same


def _as_workers_would(events: list[Event], partitions: int, seed: int) -> dict[str, str]:
    """Customer partitions driven as workers might: random batches, updates delivered
    late and in any order across sources, and one partition restored from its
    checkpoint midway (it learns its events again and resends its updates)."""
    rng = random.Random(seed)
    policy = load_policy(None)
    queues: list[list[Event]] = [[] for _ in range(partitions)]
    for event in events:
        targets = range(partitions) if broadcast(event) else (
            partition_for(getattr(event, "customer_id", None) or "", partitions),)
        for p in targets:
            queues[p].append(event)
    parts = [PartitionEngine.new(_customer_level(), policy) for _ in range(partitions)]
    for p, part in enumerate(parts):
        part.share_population(p, partitions)
    done = [0] * partitions  # events learned (or held) per partition
    inbox: list[list[tuple[int, list[Any], int | None]]] = [[] for _ in range(partitions)]
    delivered = [0] * partitions  # messages of `inbox` each partition has received
    alerts: dict[str, str] = {}
    last_sent: list[int | None] = [None] * partitions

    def keep(found: list[Any]) -> None:
        alerts.update((a.alert_id, a.finding.detector) for a in found)

    def send(p: int) -> None:
        part = parts[p]
        message = (p, part.population.take_outgoing(), part.complete())  # type: ignore[union-attr]
        if message[1] or message[2] != last_sent[p]:
            last_sent[p] = message[2]
            for q in range(partitions):
                if q != p:
                    inbox[q].append(message)

    def deliver(q: int, upto: int) -> None:
        part = parts[q]
        while delivered[q] < upto:
            source, items, complete = inbox[q][delivered[q]]
            part.population.receive(source, items, complete)  # type: ignore[union-attr]
            delivered[q] += 1
        keep(part.release())
        send(q)

    checkpoint: tuple[int, bytes, int, int] | None = None
    restored = False
    while any(done[p] < len(queues[p]) for p in range(partitions)):
        p = rng.randrange(partitions)
        if done[p] < len(queues[p]):
            batch = rng.randint(1, 40)
            for event in queues[p][done[p]:done[p] + batch]:
                parts[p].offset = done[p]
                keep(parts[p].observe(event))
                done[p] += 1
            send(p)
        q = rng.randrange(partitions)
        if delivered[q] < len(inbox[q]):
            deliver(q, rng.randint(delivered[q] + 1, len(inbox[q])))
        if checkpoint is None and sum(done) > len(events) // 3:
            c = rng.randrange(partitions)
            send(c)
            checkpoint = (c, parts[c].checkpoint(), done[c], delivered[c])
        elif checkpoint is not None and not restored and sum(done) > len(events) // 2:
            c, blob, done[c], delivered[c] = checkpoint  # its owner crashed: back to it
            parts[c] = PartitionEngine.restore(blob, detectors=_customer_level(),
                                               policy_config=policy)
            restored = True
    while any(delivered[q] < len(inbox[q]) for q in range(partitions)):
        for q in range(partitions):  # the last updates reach everyone
            deliver(q, len(inbox[q]))
    assert restored
    return alerts


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shared_population_alerts_do_not_depend_on_how_workers_interleave(
        retail: list[Event], seed: int) -> None:
    expected = _replayed(retail, 3, share=True)
    assert "drift" in expected.values()
    assert expected != _replayed(retail, 3, share=False)  # sharing changes what drift learns
    assert _as_workers_would(retail, 3, seed) == expected


Learned = Callable[[Any], tuple[Any, ...] | None]


def _learned_at_ticks(events: list[Event], name: str, learned: Learned
                      ) -> tuple[dict[int, tuple[Any, ...]], list[dict[int, tuple[Any, ...]]]]:
    """What detector `name` has learned from the population when it has ticked each
    boundary (`learned`; None: nothing to note at that tick), by boundary: in one
    engine, then in each of three partitions that share."""

    def noting(log: dict[int, tuple[Any, ...]]) -> list[Any]:
        detectors = _customer_level()
        detector = next(d for d in detectors if d.name == name)
        tick = detector.tick

        def tick_and_note(now: Any, ctx: Any) -> Any:
            found = tick(now, ctx)
            value = learned(detector)
            if value is not None:
                log[int(now.timestamp())] = value
            return found

        detector.tick = tick_and_note
        return detectors

    embedded: dict[int, tuple[Any, ...]] = {}
    list(replay(Engine(noting(embedded)), events, final_tick=False))
    logs: list[dict[int, tuple[Any, ...]]] = []

    def detectors() -> list[Any]:
        logs.append({})
        return noting(logs[-1])

    list(replay_partitioned(events, partitions=3, rep_partitions=1, make_detectors=detectors,
                            policy_config=load_policy(None), share_population=True))
    ticked = [log for log in logs if log]  # the first set only tells which detectors run
    assert len(ticked) == 3
    return embedded, ticked


def test_every_partition_ticks_having_learned_what_one_engine_has(
        retail: list[Event]) -> None:
    # what falls due at a boundary (drift's silences and orders that ran their course)
    # is exchanged before the partitions tick it: each has then learned the same updates
    # as one engine, the others' included (their order may differ, not their number):
    # resolved orders, churned ones, silences, gaps, spends
    def learned(drift: Any) -> tuple[Any, ...]:
        return (drift.resolved, drift.lost, drift.silence.labels, drift.log_gaps.mean.n,
                drift.spend_seen)

    embedded, ticked = _learned_at_ticks(retail, "drift", learned)
    for log in ticked:
        assert len(log) > 100
        for boundary, value in log.items():
            assert value == embedded[boundary], boundary
    assert embedded[max(embedded)][2] > 100  # the silence model had something to learn


def _alignment_population(detector: Any) -> tuple[Any, ...]:
    """What alignment has learned across customers, by name (label indexes differ
    between partitions)."""
    seg, reg, teams = detector.segments.names, detector.regions.names, detector.teams.names

    def by_team(table: dict[int, dict[int, int]], labels: list[str]) -> dict[Any, int]:
        return {(labels[label], teams[team]): n for label, counts in table.items()
                for team, n in counts.items()}

    return (tuple(detector.overall.counts), detector.overall.total,
            {seg[i]: (tuple(h.counts), h.total) for i, h in detector.by_segment.items()},
            by_team(detector.segment_teams, seg), by_team(detector.region_teams, reg),
            detector.contacts_seen, detector.contacts_since)


def test_alignment_partitions_tick_having_counted_every_customer_as_one_engine(
        superstore: list[Event]) -> None:
    # value bins overall and by segment, owner teams by region and segment, contacts:
    # counts, so at each tick (the monthly sweeps included) every partition has exactly
    # one engine's
    embedded, ticked = _learned_at_ticks(superstore, "alignment", _alignment_population)
    for log in ticked:
        assert len(log) > 1000
        for boundary, value in log.items():
            assert value == embedded[boundary], boundary
    last = embedded[max(embedded)]
    assert last[1] > 100 and len(last[2]) >= 3 and last[4]  # customers, segments, regions
