"""No code from data (issue 18): snapshots and Kafka checkpoints are read as data.

Before, both were pickles: a snapshot file whose payload was a pickle with a
`__reduce__` ran a shell command on `sia replay --state`, and a checkpoint record on the
changelog topic would have run on every worker. Now the state is a state-codec document
(sia/engine/state_codec.py): a pickle payload is refused as not being one, a document
naming a class outside the allowlist is refused before anything is built, an old
pickle snapshot is refused with a message to replay the events, and what SIA writes
still restores exactly.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import zlib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sia.cli import app
from sia.cli.demo import DATASETS, load
from sia.detectors.config import load_detectors
from sia.engine import snapshot, state_codec
from sia.engine.driver import Driver
from sia.engine.engine import Engine
from sia.engine.partitions import PartitionEngine, split_detectors
from sia.events.models import Event
from sia.policy import Policy, load_policy


class Exploit:
    """A pickle that runs a shell command when loaded (what the crafted file held)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _detectors() -> list[Any]:
    return load_detectors(None)


def _header_and(payload: bytes, **versions: str) -> bytes:
    """A snapshot of today's header (or with `versions` changed) around `payload`."""
    blob = snapshot.dump_raw(payload, detectors=Engine(_detectors()).detector_params())
    if not versions:
        return blob
    header = snapshot.read_header(blob)
    header["versions"].update(versions)
    end = blob.index(b"\n", len(snapshot.MAGIC))
    return snapshot.MAGIC + json.dumps(header, sort_keys=True).encode() + blob[end:]


def _crafted(marker: Path, **versions: str) -> bytes:
    """A snapshot as SIA wrote them before (a gzipped pickle after the header), whose
    pickle runs `touch marker` when loaded."""
    return _header_and(gzip.compress(pickle.dumps({"detectors": Exploit(marker)})),
                       **versions)


def test_a_crafted_snapshot_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(snapshot.SnapshotError, match="a pickle, which SIA never loads"):
        Engine.restore(_crafted(marker), detectors=_detectors())
    assert not marker.exists()  # the pickle was never loaded


def test_a_crafted_snapshot_with_an_old_header_is_refused_and_runs_nothing(
        tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    blob = _crafted(marker, state_format="2", pickle_protocol="5")
    with pytest.raises(snapshot.SnapshotError) as info:
        Engine.restore(blob, detectors=_detectors())
    message = str(info.value)
    assert "pickle" in message and "replay the events" in message
    assert "no longer reads" in message and "cannot be converted" in message
    assert not marker.exists()


def test_sia_replay_refuses_a_crafted_state_file(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    state = tmp_path / "state.snap"
    state.write_bytes(_crafted(marker))
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({
        "type": "order", "event_id": "o-1", "occurred_at": "2011-03-02T10:15:00+00:00",
        "customer_id": "C1", "order_id": "1", "lines": [
            {"product_id": "P1", "quantity": 1, "unit_price": 2.0}]}) + "\n")
    result = CliRunner().invoke(app, ["replay", str(events), "--db", str(tmp_path / "a.db"),
                                      "--state", str(state)])
    assert result.exit_code == 2, result.output
    assert "not SIA state" in result.output
    assert not marker.exists()


def test_a_crafted_kafka_checkpoint_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    customer_level, _ = split_detectors(_detectors())
    part = PartitionEngine.new(customer_level, load_policy(None))
    good = part.checkpoint()
    end = good.index(b"\n", len(snapshot.MAGIC)) + 1
    crafted = good[:end] + zlib.compress(pickle.dumps(Exploit(marker)), 1)
    with pytest.raises(snapshot.SnapshotError, match="not SIA state"):
        PartitionEngine.restore(crafted, detectors=split_detectors(_detectors())[0],
                                policy_config=load_policy(None))
    assert not marker.exists()
    assert PartitionEngine.restore(good, detectors=split_detectors(_detectors())[0],
                                   policy_config=load_policy(None)).offset == -1


@pytest.mark.parametrize("name", ["os:system", "subprocess:Popen", "builtins:eval"])
def test_a_state_document_naming_another_class_is_refused(name: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    document = {"sia-state": state_codec.FORMAT, "classes": [[name, ["args"]]],
                "root": {"d": {"detectors": {"o": [0, f"touch {marker}"]}}}}
    blob = _header_and(zlib.compress(json.dumps(document).encode()))
    with pytest.raises(snapshot.SnapshotError, match=f"class '{name}', which is not allowed"):
        Engine.restore(blob, detectors=_detectors())
    assert not marker.exists()


def test_a_state_document_of_allowed_values_in_the_wrong_shape_is_refused() -> None:
    for root in (1, {"d": {"detectors": {"d": {"drift": "not a detector"}}}}):
        document = {"sia-state": state_codec.FORMAT, "classes": [], "root": root}
        blob = _header_and(zlib.compress(json.dumps(document).encode()))
        with pytest.raises(snapshot.SnapshotError, match="not the state of an engine"):
            Engine.restore(blob, detectors=_detectors())


# what SIA writes still restores exactly


def _alert_ids(events: list[Event], split: int | None) -> list[str]:
    """Alert ids of a run, in order; with `split`, the engine is snapshotted after that
    many events and restored from the snapshot for the rest (the policy, not part of a
    snapshot, is the same object throughout)."""
    policy = Policy(load_policy(None))
    driver = Driver(Engine(_detectors()))
    findings = driver.feed(events[:split])
    if split is not None:
        blob = driver.engine.snapshot()
        driver = Driver(Engine.restore(blob, detectors=_detectors()),
                        next_tick=driver.next_tick)
        findings += driver.feed(events[split:])
    findings += driver.finish()
    return [a.alert_id for a in map(policy.admit, findings) if a is not None]


@pytest.mark.parametrize("dataset", range(len(DATASETS)),
                         ids=[d.importer.rsplit(".", 1)[1] for d in DATASETS])
def test_a_restored_engine_alerts_exactly_as_an_uninterrupted_one(dataset: int) -> None:
    events = load(DATASETS[dataset])[0]
    half = len(events) // 2
    straight = _alert_ids(events, None)
    interrupted = _alert_ids(events, half)
    # alerts after the split, which depend on what was learned before it
    assert len(straight) > len(_alert_ids(events[:half], None)), "vacuous comparison"
    assert interrupted == straight


def test_shared_references_survive_a_snapshot() -> None:
    engine = Engine(_detectors())
    Driver(engine).feed(load(DATASETS[0])[0])
    state = snapshot.load(engine.snapshot(), detectors=[d.name for d in engine.detectors])
    model = state["detectors"]["drift"].silence.model  # river caches its steps twice
    final = model.steps["LogisticRegression"]
    assert model._last_step_cached is final and model._plan[1][1] is final
    assert model._inference_transformers[0] is model.steps["StandardScaler"]
    final.l2 = 0.5  # a change through one path is seen through the others
    assert model._last_step_cached.l2 == 0.5
    performance = state["detectors"]["performance"]  # thresholds shared by teams
    original = next(d for d in engine.detectors if d.name == "performance")
    teams = [t for t, p in original._by_team.items() if p is original.params]  # type: ignore[attr-defined]
    assert teams
    assert all(performance._by_team[t] is performance.params for t in teams)
