"""The Faust agents without a broker (`agent.test_context()`): what they send is recorded
at the topic boundary; the broker itself is covered by test_kafka_integration.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sia.alerts.store import AlertStore
from sia.detectors.config import load_detectors
from sia.engine.partitions import PartitionEngine
from sia.findings import Finding, Severity
from sia.policy import Alert, load_policy
from sia.settings import Settings
from sia.transports.kafka import codec
from sia.transports.kafka.app import SiaApp
from sia.transports.kafka.gaps import SEEK_ATTEMPTS
from sia.transports.kafka.pacing import CheckpointPacer
from tests.learned import plain


def _order(i: int, customer: str = "C1", rep: str | None = "R1") -> bytes:
    event: dict[str, Any] = {
        "type": "order", "event_id": f"o{i}", "order_id": f"o{i}", "customer_id": customer,
        "occurred_at": (datetime(2024, 1, 1, 10, tzinfo=UTC) + timedelta(days=i)).isoformat(),
        "lines": [{"product_id": "P1", "quantity": 2, "unit_price": 5.0}]}
    if rep:
        event["rep_id"] = rep
    return json.dumps(event).encode()


class Recorder:
    """Stands in for the producer at the topic boundary: keeps what would be sent."""

    def __init__(self, sia: SiaApp) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = {}
        self.order: list[str] = []  # what was sent, and producer flushes, in order
        for name in ("dead_letter_topic", "alerts_topic", "by_rep_topic"):
            topic = getattr(sia, name)
            topic.send_soon = self._keep(name)
        for partitions in (sia.customers, sia.reps):
            partitions.table.send_changelog = self._changelog(partitions.name)

    def _keep(self, name: str) -> Any:
        def send_soon(**message: Any) -> None:
            self.sent.setdefault(name, []).append(message)
            self.order.append(name)
        return send_soon

    def _changelog(self, name: str) -> Any:
        def send(partition: int, key: str, value: bytes) -> None:
            self.sent.setdefault(f"{name}-changelog", []).append(
                {"partition": partition, "key": key, "value": value})
            self.order.append(f"{name}-changelog")
        return send

    async def flush(self) -> None:
        """Stands in for the producer's flush: every message sent so far is delivered."""
        self.order.append("flush")


def _app(tmp_path: Path, **settings: Any) -> SiaApp:
    base: dict[str, Any] = {"kafka_app_id": "unit", "kafka_partitions": 1, "kafka_batch": 3,
                            "kafka_batch_seconds": 0.05, "kafka_clock": "event",
                            "kafka_checkpoint_seconds": 0.0}  # every batch (see pacing)
    base.update(settings)
    sia = SiaApp(Settings(**base), lambda: load_detectors(None), load_policy(None),
                 store=AlertStore(f"sqlite:///{tmp_path / 'alerts.db'}"))
    sia.app.finalize()
    return sia


def _detect(sia: SiaApp, *groups: list[bytes]) -> None:
    """Put each group of messages to the `detect` agent, giving it time to learn a group
    (in batches of `kafka_batch`) before the next."""
    async def run() -> None:
        async with sia.detect.test_context() as agent:
            for group in groups:
                for value in group:
                    await agent.put(value)
                await asyncio.sleep(0.3)

    asyncio.run(run())


def test_bad_messages_go_to_the_dead_letter_topic_and_the_agent_carries_on(
        tmp_path: Path) -> None:
    sia = _app(tmp_path)
    sent = Recorder(sia).sent

    _detect(sia, [b"{not json", _order(1),
                  json.dumps({"type": "order", "event_id": "x"}).encode(), _order(2)])
    letters = [json.loads(m["value"]) for m in sent["dead_letter_topic"]]
    assert [letter["offset"] for letter in letters] == [0, 2]
    assert letters[0]["reason"].startswith("invalid event: not JSON")
    assert letters[1]["event_id"] == "x" and "order_id: Field required" in letters[1]["reason"]
    assert sia.counts["events"] == 2


def test_each_batch_checkpoints_the_partition_and_the_checkpoint_restores_it(
        tmp_path: Path) -> None:
    sia = _app(tmp_path)
    sent = Recorder(sia).sent

    _detect(sia, [_order(i) for i in range(5)])
    checkpoints = sent["events-changelog"]
    assert len(checkpoints) >= 2  # batches of at most 3 events
    assert {c["partition"] for c in checkpoints} == {0}
    restored = PartitionEngine.restore(
        checkpoints[-1]["value"], policy_config=load_policy(None),
        detectors=[d for d in load_detectors(None) if d.keyed_by == "customer"])
    assert restored.engine.observed == 5
    live = sia.customers.engines[0]
    assert restored.engine.clock == live.engine.clock
    assert restored.next_tick == live.next_tick


def test_partitions_are_checkpointed_at_most_every_checkpoint_seconds(
        tmp_path: Path) -> None:
    # live, batches close every second: a checkpoint per batch would write the whole
    # state each second. The first batch is checkpointed, the next ones only once the
    # interval has passed, by the next batch or by the checkpoint timer
    sia = _app(tmp_path, kafka_checkpoint_seconds=60.0)
    now = [1000.0]
    sia.pacer = CheckpointPacer(60.0, clock=lambda: now[0])
    sent = Recorder(sia).sent

    async def run() -> None:
        async with sia.detect.test_context() as agent:
            for i in range(6):  # two batches of 3
                await agent.put(_order(i))
            await asyncio.sleep(0.3)
            assert len(sent["events-changelog"]) == 1  # the first batch only
            assert sia.pacer.unsaved(sia.customers.name) == {0}
            await sia.save_unsaved()  # the timer, too early
            assert len(sent["events-changelog"]) == 1
            now[0] += 60.0
            await sia.save_unsaved()  # the timer, once due
            assert len(sent["events-changelog"]) == 2
            assert not sia.pacer.unsaved(sia.customers.name)

    asyncio.run(run())
    restored = PartitionEngine.restore(
        sent["events-changelog"][-1]["value"], policy_config=load_policy(None),
        detectors=[d for d in load_detectors(None) if d.keyed_by == "customer"])
    assert restored.engine.observed == 6 and restored.offset == 5


def test_the_pacer_checkpoints_what_is_due_and_keeps_the_rest_unsaved() -> None:
    now = [0.0]
    pacer = CheckpointPacer(10.0, clock=lambda: now[0])
    assert pacer.due("customers", {0, 1}) == {0, 1}  # never checkpointed
    pacer.saved("customers", {0, 1}, {0, 1})
    now[0] = 5.0
    assert pacer.due("customers", {1}) == set()
    pacer.saved("customers", {1}, set())
    assert pacer.unsaved("customers") == {1} and pacer.unsaved("reps") == set()
    now[0] = 10.0
    assert pacer.due("customers", ()) == {1}  # unsaved, now due
    pacer.forget("customers", {1})  # revoked: its next owner reads again
    assert pacer.due("customers", ()) == set() and pacer.unsaved("customers") == set()
    every_batch = CheckpointPacer(0.0, clock=lambda: now[0])
    every_batch.saved("reps", {0}, {0})
    assert every_batch.due("reps", {0}) == {0}


def test_events_for_rep_level_detectors_are_repartitioned_by_rep(tmp_path: Path) -> None:
    sia = _app(tmp_path)
    sent = Recorder(sia).sent

    _detect(sia, [_order(1, rep="R7"),
                  _order(2, customer="C2", rep=None)])  # no rep known: not sent
    forwarded = [m for m in sent["by_rep_topic"] if m["key"]]
    progress = [codec.decode_forwarded(m["value"]) for m in sent["by_rep_topic"]
                if not m["key"]]
    assert [m["key"] for m in forwarded] == [b"R7"]
    item = codec.decode_forwarded(forwarded[0]["value"])
    assert item.event is not None and item.event.event_id == "o1"
    assert (item.source, item.offset) == (0, 0)  # where it came from, to merge it back
    # after the batch, the partition's progress in event time: order 2's time
    assert progress[-1].source == 0 and progress[-1].event is None
    assert progress[-1].reached == datetime(2024, 1, 3, 10, tzinfo=UTC)


def test_forwarded_events_are_delivered_before_the_checkpoint_that_covers_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a customer partition never learns an event again once its checkpoint covers it:
    # had Kafka not yet taken the event forwarded by rep, a crash would lose it for good
    sia = _app(tmp_path)
    recorder = Recorder(sia)
    monkeypatch.setattr(sia.app.producer, "flush", recorder.flush)

    _detect(sia, [_order(i, rep="R7") for i in range(7)])
    order = recorder.order
    checkpoints = [i for i, name in enumerate(order) if name == "events-changelog"]
    assert len(checkpoints) >= 2  # batches of 3
    for at in checkpoints:
        before = order[:at]
        last_forward = max(i for i, name in enumerate(before) if name == "by_rep_topic")
        assert "flush" in before[last_forward:], order


def _forwarded(i: int, source: int) -> bytes:
    return codec.encode_forwarded(source, i, codec.decode_event(_order(i, rep="R1")))


def test_the_rep_agent_learns_forwarded_events_in_event_time_order(tmp_path: Path) -> None:
    sia = _app(tmp_path, kafka_partitions=2)
    sent = Recorder(sia).sent
    day = datetime(2024, 1, 1, 10, tzinfo=UTC)

    async def run() -> None:
        async with sia.detect_reps.test_context() as agent:
            await agent.put(_forwarded(5, source=1))  # later, from partition 1
            await agent.put(_forwarded(2, source=0))  # earlier, from partition 0
            await agent.put(b'{"source": 0, "event": {"type": "order"}}')  # broken
            await asyncio.sleep(0.2)
            merge = sia.reps.engines[0].merge
            assert merge is not None and len(merge.pending) == 2
            assert sia.reps.engines[0].engine.observed == 0  # partition 0 has not reported
            await agent.put(codec.encode_progress(0, day + timedelta(days=9)))
            await asyncio.sleep(0.2)
            # the watermark is partition 1's day 5: order 2 is released, order 5 waits
            assert sia.reps.engines[0].engine.observed == 1
            await agent.put(codec.encode_progress(1, day + timedelta(days=9)))
            await asyncio.sleep(0.2)

    asyncio.run(run())
    part = sia.reps.engines[0]
    assert part.engine.observed == 2 and part.merge is not None and not part.merge.pending
    assert part.reached == day + timedelta(days=5)  # o2 then o5: in event-time order
    letters = [json.loads(m["value"]) for m in sent["dead_letter_topic"]]
    assert len(letters) == 1 and letters[0]["reason"].startswith("invalid forwarded event")


def _alert(n: int) -> Alert:
    finding = Finding(detector="drift", kind="overdue", subject_kind="customer",
                      subject_id=f"C{n}", occurred_at=datetime(2024, 1, 1, tzinfo=UTC),
                      score=0.9, severity=Severity.HIGH, title="t", explanation="e",
                      action="a", dedup_key=f"drift:C{n}")
    return Alert(Alert.id_for(finding), finding)


def test_store_agent_stores_each_alert_once(tmp_path: Path, redis_client: Any) -> None:
    sia = _app(tmp_path, kafka_app_id=f"unit{id(tmp_path)}")
    sia.redis = redis_client
    alerts = [_alert(n) for n in range(3)]

    async def run() -> None:
        async with sia.store_alerts.test_context() as agent:
            for alert in [*alerts, alerts[0], alerts[1]]:
                await agent.put(codec.encode_alert(alert))
            await asyncio.sleep(0.8)
            await agent.put(codec.encode_alert(alerts[2]))  # a reprocessed alert, later
            await asyncio.sleep(0.8)

    asyncio.run(run())
    assert sia.store is not None and sia.store.count() == 3
    assert sia.counts["stored"] == 3 and sia.counts["duplicate_alerts"] == 3
    prefix = f"sia:{sia.settings.kafka_app_id}:alert:"
    assert all(redis_client.get(prefix + a.alert_id) is not None for a in alerts)
    assert redis_client.ttl(prefix + alerts[0].alert_id) > 30 * 86400


def test_the_detecting_agent_stores_alerts_before_it_checkpoints(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the alerts topic alone can lose alerts across a rebalance (Faust acks messages of
    # an earlier generation it skips), so a batch's alerts are stored before the
    # checkpoint that covers its events, without the store agent
    from sia.transports.kafka.app import Partitions

    sia = _app(tmp_path)
    Recorder(sia)
    sent: list[Alert] = []
    learn, checkpoint = PartitionEngine._observe_admitted, Partitions.checkpoint

    def observe(self: PartitionEngine, event: Any) -> list[Alert]:
        alerts = [*learn(self, event), _alert(100 + len(sent))]  # one more per event
        sent.extend(alerts[-1:])
        return alerts

    stored_at_checkpoints: list[tuple[int, int]] = []

    def checkpoint_(self: Partitions, partition: int) -> int:
        assert sia.store is not None
        stored_at_checkpoints.append((sia.store.count(), len(sent)))
        return checkpoint(self, partition)

    monkeypatch.setattr(PartitionEngine, "_observe_admitted", observe)
    monkeypatch.setattr(Partitions, "checkpoint", checkpoint_)

    _detect(sia, [_order(i) for i in range(5)])  # a day apart: runs of one, one at a time
    assert len(sent) == 5 and len(stored_at_checkpoints) >= 2
    assert all(stored >= sent_so_far for stored, sent_so_far in stored_at_checkpoints)
    assert sia.store is not None and sia.store.count() == 5
    assert sia.counts["stored"] == 5


def test_a_partition_handed_offsets_past_its_checkpoint_seeks_back(tmp_path: Path) -> None:
    # Faust can commit past messages no agent learned (it acks the ones it drops at a
    # rebalance): the state's offset reveals the gap and the consumer seeks back
    sia = _app(tmp_path)
    Recorder(sia)
    seeks: list[tuple[int, int]] = []

    async def seek(tp: Any, offset: int) -> None:
        seeks.append((tp.partition, offset))

    sia.app.consumer.seek = seek
    fetches = [(0, range(0, 3)),  # learned and checkpointed
               (6, range(6, 8)),  # a new owner resumes past 3, 4, 5: nothing learned
               (3, range(3, 8)),  # after the seek back to 3
               (12, range(12, 13)),  # past 8 to 11 again, but after the seek ...
               # ... 10 comes first: fetched before the seek, or 8 and 9 are gone; after
               # SEEK_ATTEMPTS seeks they are taken for gone (retention): carry on
               *[(10, range(10, 12))] * SEEK_ATTEMPTS]

    async def run() -> None:
        async with sia.detect.test_context() as agent:
            for offset, days in fetches:
                agent.sent_offset = offset
                for i in days:
                    await agent.put(_order(i))
                await asyncio.sleep(0.3)

    asyncio.run(run())
    assert seeks == [(0, 3)] + [(0, 8)] * SEEK_ATTEMPTS
    part = sia.customers.engines[0]
    assert part.offset == 11 and part.engine.observed == 10  # 0 to 7, 10 and 11
    assert sia.counts["rewinds"] == 2 and sia.counts["unreadable_offsets"] == 2
    assert part.engine.duplicates == 0 and sia.counts["events"] == 10


def test_an_exchange_that_received_nothing_reads_the_population_topic_from_its_start(
        tmp_path: Path) -> None:
    # the share agent does not checkpoint: a partition restored from a checkpoint taken
    # before its first population message is handed the group's commit, past messages
    # it never kept. Starting there (as a new events partition may) lost updates and
    # hung every partition at the next boundary (the kill -9 test, session 6)
    sia = _app(tmp_path, kafka_partitions=2)
    Recorder(sia)
    seeks: list[tuple[int, int]] = []

    async def seek(tp: Any, offset: int) -> None:
        seeks.append((tp.partition, offset))

    sia.app.consumer.seek = seek
    first = [codec.encode_shared(1, None, [(0, n, "drift", ("gap", 1.0))]) for n in (1, 2)]

    async def run() -> None:
        async with sia.share_population.test_context() as population:
            population.sent_offset = 2  # the group committed past offsets 0 and 1
            await population.put(codec.encode_shared(1, None, [(0, 3, "drift", ("gap", 1.0))]),
                                 partition=0)
            await asyncio.sleep(0.2)
            assert seeks == [(0, 0)]
            population.sent_offset = 0  # after the seek back
            for value in [*first, codec.encode_shared(1, None, [(0, 3, "drift", ("gap", 1.0))])]:
                await population.put(value, partition=0)
            await asyncio.sleep(0.2)

    asyncio.run(run())
    exchange = sia.customers.engines[0].population
    assert exchange is not None and exchange.offset == 2 and exchange._next_seq[1] == 4
    assert sia.counts["dead_letter"] == 0


def test_population_messages_gone_before_they_were_read_cost_only_their_updates(
        tmp_path: Path) -> None:
    # a partition with nothing received is handed offset 5; after each seek back to 0
    # offset 5 comes first again: 0 to 4 are gone (retention). The updates they held
    # are lost, and counted, and the sequence jump that follows is accepted once
    sia = _app(tmp_path, kafka_partitions=2)
    Recorder(sia)

    async def seek(tp: Any, offset: int) -> None:
        pass

    sia.app.consumer.seek = seek
    later = codec.encode_shared(1, None, [(0, 9, "drift", ("gap", 1.0))])

    async def run() -> None:
        async with sia.share_population.test_context() as population:
            for _ in range(1 + SEEK_ATTEMPTS):  # before the seek, then after each
                population.sent_offset = 5
                await population.put(later, partition=0)
                await asyncio.sleep(0.2)

    asyncio.run(run())
    exchange = sia.customers.engines[0].population
    assert exchange is not None and exchange.offset == 5 and exchange._next_seq[1] == 10
    assert exchange.lost == 8 and sia.counts["unreadable_offsets"] == 5
    assert sia.counts["dead_letter"] == 0


def test_a_partition_holds_events_at_a_boundary_until_every_partition_is_complete(
        tmp_path: Path) -> None:
    # two customer partitions share population models: partition 0 learns up to the
    # first boundary and holds the rest until partition 1 says it is complete beyond
    sia = _app(tmp_path, kafka_partitions=2)
    recorder = Recorder(sia)
    sent: list[dict[str, Any]] = []

    async def send(**message: Any) -> Any:
        sent.append(message)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    assert sia.population_topic is not None
    sia.population_topic.send = send

    async def run() -> None:
        async with sia.detect.test_context() as events, \
                sia.share_population.test_context() as population:
            for i in range(5):  # a day apart
                await events.put(_order(i), partition=0)
            await asyncio.sleep(0.3)
            part = sia.customers.engines[0]
            assert part.engine.observed == 1 and len(part.held) == 4 and part.waiting
            mine = codec.decode_shared(sent[-1]["value"])
            assert sent[-1]["partition"] == 1 and mine.source == 0
            assert mine.complete == int(datetime(2024, 1, 2, tzinfo=UTC).timestamp())
            assert [u[3][0] for u in mine.updates if u[2] == "drift"] == ["spend"]  # order 0
            assert sia.waits() == "; partition 0 waits at 2024-01-02 00:00 for 1 (nothing yet)"
            day = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
            await population.put(codec.encode_shared(1, day, []), partition=0)
            await asyncio.sleep(0.3)
            assert sia.waits() == ("; partition 0 waits at 2024-01-02 00:00 for 1 "
                                   "(through 2024-01-01 00:00)")
            later = int(datetime(2024, 2, 1, tzinfo=UTC).timestamp())
            await population.put(codec.encode_shared(1, later, []), partition=0)
            await asyncio.sleep(0.3)
            assert part.engine.observed == 5 and not part.held and not part.waiting
            assert sia.waits() == ""
            # what the population batch released waits for the checkpoint timer
            assert sia.pacer.unsaved(sia.customers.name) == {0}
            changelog = len(recorder.sent["events-changelog"])
            await sia.save_unsaved()
            assert len(recorder.sent["events-changelog"]) == changelog + 1

    asyncio.run(run())


def test_a_held_event_that_fails_when_released_goes_to_the_dead_letters_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sia.engine.engine import Engine

    sia = _app(tmp_path, kafka_partitions=2)
    recorder = Recorder(sia)

    async def send(**message: Any) -> Any:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    assert sia.population_topic is not None
    sia.population_topic.send = send
    learn = Engine.observe

    def observe(self: Engine, event: Any) -> Any:
        if event.event_id == "o2":
            raise RuntimeError("a detector's bug")
        return learn(self, event)

    monkeypatch.setattr(Engine, "observe", observe)

    async def run() -> None:
        async with sia.detect.test_context() as events, \
                sia.share_population.test_context() as population:
            for i in range(5):  # a day apart: order 0 learned, 1 to 4 held
                await events.put(_order(i), partition=0)
            await asyncio.sleep(0.3)
            part = sia.customers.engines[0]
            assert len(part.held) == 4
            later = int(datetime(2024, 2, 1, tzinfo=UTC).timestamp())
            await population.put(codec.encode_shared(1, later, []), partition=0)
            await asyncio.sleep(0.3)
            # the others are learned; only order 2 is kept, with its reason
            assert part.engine.observed == 4 and not part.held and not part.waiting

    asyncio.run(run())
    dead = [json.loads(m["value"]) for m in recorder.sent["dead_letter_topic"]]
    assert [(d["event_id"], d["offset"]) for d in dead] == [("o2", 2)]
    assert dead[0]["reason"] == "processing failed: RuntimeError: a detector's bug"
    assert json.loads(dead[0]["value"])["event_id"] == "o2"


def test_population_updates_go_in_chunks_and_only_the_last_says_how_complete(
        tmp_path: Path) -> None:
    from sia.transports.kafka import sharing

    sia = _app(tmp_path, kafka_partitions=2)
    part = sia.customers.engine(0)
    part.start_clock(datetime(2024, 1, 1, tzinfo=UTC))
    outbox = part.population.outbox  # type: ignore[union-attr]
    for i in range(2 * sharing.CHUNK + 1):
        outbox.append(("drift", ("gap", float(i))))
    messages = [codec.decode_shared(value) for _, value in sharing._outgoing(sia, {0})]
    assert [len(m.updates) for m in messages] == [sharing.CHUNK, sharing.CHUNK, 1]
    assert [m.complete for m in messages] == [None, None, part.complete()]
    assert [u[1] for m in messages for u in m.updates] == list(range(1, 2 * sharing.CHUNK + 2))
    assert sharing._outgoing(sia, {0}) == []  # nothing new to tell


@pytest.mark.parametrize("value", [b"", b"[]", b'"text"'])
def test_codec_names_the_reason(value: bytes) -> None:
    with pytest.raises(codec.Undecodable):
        codec.decode_event(value)


def test_alert_codec_round_trips() -> None:
    alert = _alert(1)
    assert codec.decode_alert(codec.encode_alert(alert)) == alert


def _sparse_order(i: int) -> bytes:
    """Orders 60 days apart: further apart than event ids are remembered (35 days)."""
    return json.dumps({
        "type": "order", "event_id": f"s{i}", "order_id": f"s{i}", "customer_id": "C1",
        "occurred_at": (datetime(2023, 1, 1, tzinfo=UTC) + timedelta(days=60 * i)).isoformat(),
        "lines": [{"product_id": "P1", "quantity": 1, "unit_price": 5.0}]}).encode()


def test_a_new_owner_skips_what_the_checkpoint_covers_by_offset(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = _app(tmp_path / "a"), _app(tmp_path / "b")
    sent = Recorder(first).sent
    Recorder(second)

    _detect(first, [_sparse_order(i) for i in range(6)])  # offsets 0, 1, ...
    # the first owner dies; its last commit was behind its last checkpoint, so the new
    # owner restores the checkpoint and is handed offsets 0.. again, then two new ones
    second.customers.table.data["0"] = sent["events-changelog"][-1]["value"]
    _detect(second, [_sparse_order(i) for i in range(8)])
    part = second.customers.engines[0]
    assert part.offset == 7 and second.counts["repeats"] == 6
    assert part.engine.observed == 8 and part.engine.duplicates == 0  # each learned once


def test_a_failing_run_costs_only_its_failing_event(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # a detector raises on one event in the middle of a run: the partition goes back to
    # its last checkpoint and learns the batch one event at a time, so only that event
    # goes to the dead letters and the state is what event-by-event learning leaves
    from sia.detectors.trend import TrendDetector
    from sia.events.models import parse_event

    learn = TrendDetector.observe

    def observe(self: TrendDetector, event: Any, ctx: Any) -> list[Finding]:
        if event.event_id == "o4":
            raise RuntimeError("a bug in trend")
        return learn(self, event, ctx)

    monkeypatch.setattr(TrendDetector, "observe", observe)

    def same_day(i: int) -> bytes:  # no tick between them: one run per batch
        event = json.loads(_order(0))
        event.update(event_id=f"o{i}", order_id=f"o{i}", occurred_at=(
            datetime(2024, 1, 1, 1 + i, tzinfo=UTC)).isoformat())
        return json.dumps(event).encode()

    sia = _app(tmp_path)
    sent = Recorder(sia).sent

    # the first batch is learned and checkpointed before the second is put
    _detect(sia, [same_day(i) for i in range(3)], [same_day(i) for i in range(3, 6)])
    letters = [json.loads(m["value"]) for m in sent["dead_letter_topic"]]
    assert [(x["offset"], x["reason"]) for x in letters] == [
        (4, "processing failed: RuntimeError: a bug in trend")]
    assert sia.counts["relearned"] == 3
    # the same state as learning each event in turn, with the same failure
    expected = PartitionEngine.new(
        [d for d in load_detectors(None) if d.keyed_by == "customer"], load_policy(None))
    expected.share_population(0, 1)  # as the worker's partitions do
    for i in range(6):
        with contextlib.suppress(RuntimeError):  # o4, as in the worker
            expected.observe(parse_event(same_day(i)))
    expected.population.take_outgoing()  # type: ignore[union-attr]  # sent by the worker
    got = sia.customers.engines[0].engine
    assert got.observed == expected.engine.observed == 6
    # by value: a restored checkpoint shares equal strings differently, so bytes differ
    assert plain(got.detectors) == plain(expected.engine.detectors)
    assert plain(got.catalog) == plain(expected.engine.catalog)
    assert plain(got.seen) == plain(expected.engine.seen)
