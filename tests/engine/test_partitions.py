"""The engine split by partition: the same alerts as the plain engine with one partition,
the same alerts whatever happens to a partition's owner (checkpoint, restore, replay of
the events after the checkpoint), and Kafka's own partitioner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sia.detectors.config import load_detectors
from sia.engine.engine import Engine, replay
from sia.engine.partitions import (
    PartitionEngine,
    partition_for,
    replay_partitioned,
    split_detectors,
)
from sia.engine.snapshot import SnapshotError
from sia.events.models import Event
from sia.policy import Policy, load_policy


def _embedded(events: list[Event]) -> dict[str, str]:
    engine, policy = Engine(load_detectors(None)), Policy(load_policy(None))
    admitted = (policy.admit(f) for f in replay(engine, events, final_tick=False))
    return {a.alert_id: a.finding.detector for a in admitted if a is not None}


def _partitioned(events: list[Event], partitions: int) -> dict[str, str]:
    alerts = replay_partitioned(events, partitions=partitions, rep_partitions=1,
                                make_detectors=lambda: load_detectors(None),
                                policy_config=load_policy(None))
    return {a.alert_id: a.finding.detector for a in alerts}


@pytest.mark.parametrize("dataset", ["retail", "crm"])
def test_one_partition_finds_exactly_what_the_embedded_engine_finds(
        dataset: str, request: pytest.FixtureRequest) -> None:
    events = request.getfixturevalue(dataset)
    embedded = _embedded(events)
    assert embedded, "the sample makes alerts"
    assert _partitioned(events, 1) == embedded


def test_rep_level_alerts_come_from_the_rep_stream(crm: list[Event]) -> None:
    alerts = _partitioned(crm, 4)
    assert "performance" in alerts.values()
    assert "performance" in _embedded(crm).values()


def test_a_restored_partition_continues_exactly(retail: list[Event]) -> None:
    customer_level, _ = split_detectors(load_detectors(None))
    policy = load_policy(None)
    whole = PartitionEngine.new(customer_level, policy)
    straight = [a.alert_id for e in retail for a in whole.observe(e)]

    first = PartitionEngine.new(split_detectors(load_detectors(None))[0], policy)
    half = len(retail) // 2
    resumed = [a.alert_id for e in retail[:half] for a in first.observe(e)]
    blob = first.checkpoint()
    second = PartitionEngine.restore(blob, policy_config=policy,
                                     detectors=split_detectors(load_detectors(None))[0])
    resumed += [a.alert_id for e in retail[half:] for a in second.observe(e)]
    assert resumed == straight
    assert second.engine.observed == whole.engine.observed


def test_checkpoint_refuses_other_detectors(retail: list[Event]) -> None:
    customer_level, _ = split_detectors(load_detectors(None))
    part = PartitionEngine.new(customer_level, load_policy(None))
    for event in retail[:200]:
        part.observe(event)
    with pytest.raises(SnapshotError, match="detectors"):
        PartitionEngine.restore(part.checkpoint(), policy_config=load_policy(None),
                                detectors=customer_level[:2])


def test_catalog_is_pickled_again_only_after_reference_data(retail: list[Event]) -> None:
    customer_level, _ = split_detectors(load_detectors(None))
    part = PartitionEngine.new(customer_level, load_policy(None))
    transactions: Iterator[Any] = (e for e in retail if e.type in ("order", "return"))
    part.observe(next(transactions))
    part.checkpoint()
    cached = part._catalog_blob
    part.observe(next(transactions))
    part.checkpoint()
    assert part._catalog_blob is cached
    part.observe(next(e for e in retail if e.type == "product"))
    part.checkpoint()
    assert part._catalog_blob is not cached


def test_partitioner_matches_aiokafka() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    partitioner = DefaultPartitioner()
    for key in ("12346", "C-7", "ünïcode", "x" * 40):
        parts = list(range(8))
        assert partition_for(key, 8) == partitioner(key.encode(), parts, parts)
