"""A partition's events learned run by run (`PartitionEngine.runs`/`observe_run`, through
`Engine.observe_many`) give exactly what learning them event by event gives: the same
alerts in the same order, the same learned state (byte for byte in the checkpoint), and,
in the worker, the same events forwarded by rep."""

from __future__ import annotations

import datetime
import json
import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from sia.bench.kafka_bench import _message, encode
from sia.cli.demo import DATASETS, load
from sia.detectors.config import load_detectors
from sia.engine import snapshot, state_codec
from sia.engine.partitions import PartitionEngine, partition_for, split_detectors
from sia.events.models import Event
from sia.policy import load_policy
from sia.settings import Settings
from sia.transports.kafka.app import SiaApp
from sia.transports.kafka.topics import Topics


@pytest.fixture(scope="module", params=[0, 2], ids=["retail", "crm"])
def events(request: pytest.FixtureRequest) -> list[Event]:
    return load(DATASETS[request.param])[0]


def _partition_streams(events: list[Event], partitions: int) -> list[list[Event]]:
    """Each partition's events as `sia produce` splits them (reference data to all)."""
    streams: list[list[Event]] = [[] for _ in range(partitions)]
    for event in events:
        customer = getattr(event, "customer_id", None)
        if event.type in ("product", "rep"):
            for stream in streams:
                stream.append(event)
        else:
            streams[partition_for(customer or "", partitions)].append(event)
    return streams


def _canon(o: Any) -> Any:
    """A value's structure, without object identity: checkpoints of equal states can
    differ in which equal objects they share (back-references of the state codec), so
    they are compared by what they restore to, not byte for byte."""
    if o is None or isinstance(o, bool | int | str | bytes | datetime.date
                               | datetime.timedelta):
        return o
    if isinstance(o, float):
        return ("nan",) if math.isnan(o) else o
    if isinstance(o, list | tuple):
        return (type(o).__name__, tuple(_canon(x) for x in o))
    if isinstance(o, dict):
        return ("dict", tuple((_canon(k), _canon(v)) for k, v in o.items()))
    if isinstance(o, set | frozenset):
        return ("set", tuple(sorted(repr(_canon(x)) for x in o)))
    if isinstance(o, type) or (callable(o) and not hasattr(o, "__dict__")):
        return repr(o)
    r = o.__reduce_ex__(4)
    if isinstance(r, str):
        return r
    return (type(o).__qualname__, *(_canon(list(x) if i > 2 and x is not None else x)
                                     for i, x in enumerate(r) if i > 0))


def _learned(part: PartitionEngine) -> Any:
    """Everything a partition's checkpoint holds, as a structure."""
    payload = snapshot.load_raw(part.checkpoint(),
                                detectors=[d.name for d in part.engine.detectors])
    catalog, rest = state_codec.decompress(payload).split(b"\n")
    state = state_codec.loads(rest)
    state["catalog"] = state_codec.loads(catalog)
    return _canon(state)


def _new() -> PartitionEngine:
    return PartitionEngine.new(split_detectors(load_detectors(None))[0], load_policy(None))


def _chunks(events: list[Event], sizes: list[int]) -> list[list[Event]]:
    out, i, k = [], 0, 0
    while i < len(events):
        size = sizes[k % len(sizes)]
        out.append(events[i:i + size])
        i, k = i + size, k + 1
    return out


@pytest.mark.parametrize("sizes", [[2_000], [1, 7, 300, 2, 5_000]])
def test_runs_learn_exactly_what_event_by_event_learns(events: list[Event],
                                                       sizes: list[int]) -> None:
    for stream in _partition_streams(events, 2):
        one, many = _new(), _new()
        expected, got = [], []
        for chunk in _chunks(stream, sizes):
            for event in chunk:
                expected += [a.alert_id for a in one.observe(event)]
            got += [a.alert_id for run in many.runs(chunk)  # as the worker learns a batch
                    for a in many.observe_run(chunk[run])]
            assert got == expected  # same alerts, same order, after every chunk
        assert expected, "the stream makes alerts"
        assert many.engine.observed == one.engine.observed
        assert (many.next_tick, many.reached) == (one.next_tick, one.reached)
        assert _learned(many) == _learned(one)  # the same learned state


def test_runs_never_cross_a_tick_boundary_or_hold_reference_data(events: list[Event]) -> None:
    stream = _partition_streams(events, 2)[0]
    part = _new()
    runs = list(part.runs(stream))
    assert [i for r in runs for i in range(len(stream))[r]] == list(range(len(stream)))
    assert any(r.stop - r.start > 1 for r in runs)
    for r in runs:
        part.observe_run(stream[r])  # raises if a run crossed a boundary
    bad = _new()
    bad.observe(stream[0])
    reference = next(e for e in stream[1:] if e.type in ("product", "rep", "customer"))
    other = next(e for e in stream[1:] if e.type not in ("product", "rep", "customer"))
    with pytest.raises(ValueError, match="not a run"):
        bad.observe_run([other, reference])


def _worker(batch: int, *, checkpoints: bool) -> tuple[SiaApp, dict[str, list[Any]]]:
    settings = Settings(kafka_app_id="runs", kafka_partitions=4, kafka_rep_partitions=1,
                        kafka_batch=batch, kafka_clock="event",
                        kafka_share_population=False)  # no other partitions' updates here
    sia = SiaApp(settings, lambda: load_detectors(None), load_policy(None))
    sia.app.finalize()
    sent: dict[str, list[Any]] = defaultdict(list)

    def keep(name: str) -> Callable[..., None]:
        def send_soon(**message: Any) -> None:
            sent[name].append(message)
        return send_soon

    for name in ("by_rep_topic", "alerts_topic", "dead_letter_topic"):
        getattr(sia, name).send_soon = keep(name)
    for partitions in (sia.customers, sia.reps):
        partitions.table.send_changelog = lambda *args, **kwargs: None
        if not checkpoints:
            partitions.checkpoint = lambda partition: 0
    return sia, sent


def test_the_worker_learning_runs_sends_what_it_sent_event_by_event(
        events: list[Event]) -> None:
    topics = Topics("runs", 4, 1)
    offsets: dict[int, int] = defaultdict(int)
    messages = []
    for _, key, value, partition in encode(events, topics)[0]:
        p = partition or 0
        messages.append(_message(topics.events, p, offsets[p], key, value))
        offsets[p] += 1
    # one message a batch: every run is one event, learned by `observe` as before runs
    single, single_sent = _worker(1, checkpoints=False)
    for message in messages:
        single.detect_batch([message], single.customers)
    batched, batched_sent = _worker(2_000, checkpoints=True)
    for i in range(0, len(messages), 2_000):
        batched.detect_batch(messages[i:i + 2_000], batched.customers)

    def forwarded(sent: dict[str, list[Any]]) -> dict[int, list[tuple[Any, ...]]]:
        by_source: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for m in sent["by_rep_topic"]:
            data = json.loads(m["value"])
            if "event" in data:  # progress differs with the batching, by design
                by_source[data["source"]].append((m["key"], m["value"], m.get("partition")))
        return dict(by_source)

    assert single.counts["alerts"] > 0 and single.counts["dead_letter"] == 0
    assert forwarded(batched_sent) == forwarded(single_sent)  # in each source's order
    assert sum(map(len, forwarded(single_sent).values())) > 1_000
    assert (sorted(m["value"] for m in batched_sent["alerts_topic"])
            == sorted(m["value"] for m in single_sent["alerts_topic"]))
    assert batched.counts["events"] == single.counts["events"] == len(messages)
    for p in range(4):
        a, b = single.customers.engines[p], batched.customers.engines[p]
        assert a.offset == b.offset == offsets[p] - 1
        assert _learned(a) == _learned(b)
