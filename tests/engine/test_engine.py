"""The engine: idempotency, reference data, routing, the replay clock, snapshots."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from sia.detectors.base import REGISTRY, Context, Detector, Params, registered
from sia.detectors.cross_sell import CrossSellDetector
from sia.detectors.drift import DriftDetector
from sia.engine import snapshot
from sia.engine.engine import Engine, replay
from sia.engine.seen import SeenEvents
from sia.events.models import (
    Customer,
    Event,
    Interaction,
    Opportunity,
    Order,
    OrderLine,
    Product,
    Rep,
)
from sia.findings import Finding, Severity
from tests.learned import plain

T0 = datetime(2024, 3, 4, tzinfo=UTC)


def at(day: float, hour: float = 0.0) -> datetime:
    return T0 + timedelta(days=day, hours=hour)


def order(event_id: str, when: datetime, customer: str = "C1") -> Order:
    return Order(event_id=event_id, occurred_at=when, customer_id=customer,
                 order_id=f"SO-{event_id}", currency="GBP",
                 lines=[OrderLine(product_id="A", quantity=2, unit_price=10.0)])


class Recorder(Detector[Params]):
    """A test double: records what the engine hands it; never registered."""

    name = "recorder"
    params_type = Params
    handles = frozenset({"order", "interaction"})

    def __init__(self) -> None:
        super().__init__()
        self.observed: list[str] = []
        self.ticks: list[datetime] = []

    def observe(self, event: Event, ctx: Context) -> list[Finding]:
        self.observed.append(event.event_id)
        return []

    def tick(self, now: datetime, ctx: Context) -> list[Finding]:
        self.ticks.append(now)
        return [Finding(detector=self.name, kind="tick", subject_kind="team", subject_id="all",
                        occurred_at=now, score=0.5, severity=Severity.LOW, title="tick",
                        explanation=f"tick {len(self.ticks)}", action="none",
                        dedup_key=f"tick:{now.isoformat()}")]

    def customer_state(self, customer_id: str) -> object | None:
        return None


def unit_detectors() -> list[Detector[Any]]:
    return [cls(**cls.unit_test_params()) for cls in registered().values()]


def to_dicts(findings: list[Finding]) -> list[dict[str, Any]]:
    return [f.to_dict() for f in findings]


def test_recorder_is_not_registered() -> None:
    assert "recorder" not in REGISTRY and "recorder" not in registered()


# idempotency and routing


def test_duplicate_event_ids_are_processed_once() -> None:
    recorder = Recorder()
    drift = DriftDetector()
    engine = Engine([recorder, drift])
    first = order("o1", at(0, 9))
    assert engine.observe(first) == []
    assert engine.observe(first) == []
    # the same id with other content is a conflict: refused, not learned, not dropped
    refused: list[tuple[str, str]] = []
    engine.on_reject = lambda event, reason: refused.append((event.event_id, reason))
    assert engine.observe(order("o1", at(0, 10), customer="C2")) == []
    assert (engine.observed, engine.duplicates, engine.rejected) == (1, 1, 1)
    assert refused == [("o1", refused[0][1])] and refused[0][1].startswith("conflict: event o1")
    # a repeat is a duplicate however late it comes (judged before its time)
    later = order("o2", at(30, 9))
    engine.observe(later)
    assert engine.observe(first) == [] and engine.duplicates == 2 and engine.rejected == 1
    assert recorder.observed == ["o1", "o2"]
    state = drift.customer_state("C1")
    assert state is not None and state.orders == 2  # type: ignore[attr-defined]  # o1, o2
    assert drift.customer_state("C2") is None


def test_events_go_only_to_detectors_that_handle_their_type() -> None:
    recorder = Recorder()  # orders and interactions
    engine = Engine([recorder])
    engine.observe(order("o1", at(0, 9)))
    engine.observe(Interaction(event_id="i1", occurred_at=at(0, 10), customer_id="C1",
                               channel="call"))
    engine.observe(Opportunity(event_id="op1", occurred_at=at(0, 11), opportunity_id="OP",
                               customer_id="C1", rep_id="R1", stage="won"))
    engine.observe(Rep(event_id="r1", occurred_at=at(0, 12), rep_id="R1", team="T"))
    assert recorder.observed == ["o1", "i1"]
    assert engine.observed == 4
    assert engine.clock == at(0, 12)


def test_duplicate_detectors_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Engine([DriftDetector(), DriftDetector()])


def test_clock_follows_newest_event_or_tick() -> None:
    engine = Engine([Recorder()])
    assert engine.clock is None
    engine.observe(order("o1", at(2)))
    engine.observe(order("o0", at(1)))  # late event: the clock does not go back
    assert engine.clock == at(2)
    engine.tick(at(3))
    assert engine.clock == at(3)
    engine.tick(at(2, 12))
    assert engine.clock == at(3)


def test_seen_events_forget_ids_older_than_retention() -> None:
    seen = SeenEvents(timedelta(days=10))
    assert seen.check_and_add("a", at(0))
    assert not seen.check_and_add("a", at(0))
    assert seen.check_and_add("b", at(9))
    assert not seen.check_and_add("a", at(0))  # 9 days: still remembered
    assert seen.check_and_add("c", at(10, 1))  # "a" is now older than 10 days
    assert len(seen) == 2
    assert seen.check_and_add("a", at(0))  # forgotten: a redelivery this late is new again
    assert not seen.check_and_add("b", at(9))


def test_engine_dedup_retention_is_event_time() -> None:
    engine = Engine([Recorder()], dedup_retention=timedelta(days=5))
    engine.observe(order("o1", at(0)))
    engine.observe(order("o2", at(3)))
    assert engine.observe(order("o1", at(0))) == [] and engine.duplicates == 1
    engine.observe(order("o3", at(6)))
    engine.observe(order("o1", at(0)))  # beyond the retention: processed again
    assert engine.duplicates == 1 and engine.observed == 4


# reference data


def test_reference_events_update_the_catalog_newest_wins() -> None:
    engine = Engine([Recorder()])
    engine.observe(Rep(event_id="r1", occurred_at=at(0), rep_id="R1", team="North"))
    engine.observe(Rep(event_id="r2", occurred_at=at(0), rep_id="R2", team="South"))
    engine.observe(Customer(event_id="c1", occurred_at=at(5), customer_id="C1",
                            name="Newer Name", segment="export", owner_rep_id="R2"))
    engine.observe(Customer(event_id="c0", occurred_at=at(2), customer_id="C1",
                            name="Older Name", segment="smb", owner_rep_id="R1"))
    engine.observe(Product(event_id="p1", occurred_at=at(1), product_id="A",
                           name="copier paper"))
    catalog = engine.catalog
    assert catalog.customers["C1"].name == "Newer Name"
    assert catalog.customer_name("C1") == "Newer Name (C1)"
    assert catalog.customer_name("C9") == "customer C9"
    assert catalog.product_name("A") == "Copier Paper (A)"
    assert engine.scope_of("C1") == ("South", "export")
    assert engine.scope_of("C9") == (None, None)
    # a newer record replaces, and a record with the same time too (last writer wins)
    engine.observe(Customer(event_id="c2", occurred_at=at(5), customer_id="C1",
                            name="Same Time", segment="smb", owner_rep_id="R1"))
    assert engine.scope_of("C1") == ("North", "smb")
    engine.observe(Rep(event_id="r3", occurred_at=at(6), rep_id="R1", team="West"))
    assert engine.scope_of("C1") == ("West", "smb")


# the replay clock


def test_replay_ticks_at_each_day_boundary_crossed() -> None:
    recorder = Recorder()
    engine = Engine([recorder])
    events = [order("o1", at(0, 10)), order("o2", at(0, 15)), order("o3", at(3, 9)),
              order("o4", at(4, 0)), order("o5", at(4) + timedelta(seconds=1))]
    findings = list(replay(engine, events))
    # boundaries 1..4 are crossed before o3/o4; one more tick after the last event
    assert recorder.ticks == [at(1), at(2), at(3), at(4), at(5)]
    assert recorder.observed == ["o1", "o2", "o3", "o4", "o5"]
    assert [f.occurred_at for f in findings] == recorder.ticks
    assert engine.clock == at(5)


def test_replay_tick_before_an_event_exactly_at_midnight() -> None:
    recorder = Recorder()
    order_of: dict[str, int] = {}

    class Spy(Recorder):
        name = "spy"

        def observe(self, event: Event, ctx: Context) -> list[Finding]:
            order_of[event.event_id] = len(recorder.ticks)
            return []

    engine = Engine([recorder, Spy()])
    list(replay(engine, [order("o1", at(0, 23)), order("o2", at(1))]))
    assert recorder.ticks == [at(1), at(2)]
    assert order_of == {"o1": 0, "o2": 1}  # the midnight tick comes before the event


def test_replay_with_other_step_and_zone() -> None:
    recorder = Recorder()
    engine = Engine([recorder])
    zone = timezone(timedelta(hours=2))
    start = datetime(2024, 3, 4, 5, tzinfo=zone)
    list(replay(engine, [order("o1", start), order("o2", start + timedelta(hours=20))],
                tick_every=timedelta(hours=6)))
    # midnight-aligned in the event's zone: 06:00, 12:00, 18:00, 00:00 then one after o2
    assert [t.isoformat() for t in recorder.ticks] == [
        "2024-03-04T06:00:00+02:00", "2024-03-04T12:00:00+02:00",
        "2024-03-04T18:00:00+02:00", "2024-03-05T00:00:00+02:00",
        "2024-03-05T06:00:00+02:00"]


def test_replay_of_nothing_does_not_tick() -> None:
    recorder = Recorder()
    assert list(replay(Engine([recorder]), [])) == []
    assert recorder.ticks == []


def test_full_replay_is_deterministic(stream: tuple[Event, ...]) -> None:
    first = to_dicts(list(replay(Engine(unit_detectors()), stream)))
    second = to_dicts(list(replay(Engine(unit_detectors()), stream)))
    assert first == second
    assert {f["detector"] for f in first} == set(registered())


# learning a run of events detector after detector


@pytest.mark.parametrize("chunk", [2, 7, 512, 4096])
def test_chunked_replay_finds_exactly_what_event_by_event_finds(
        stream: tuple[Event, ...], chunk: int) -> None:
    one, chunked = Engine(unit_detectors()), Engine(unit_detectors())
    expected = to_dicts(list(replay(one, stream)))
    assert to_dicts(list(replay(chunked, stream, chunk=chunk))) == expected
    assert (chunked.observed, chunked.duplicates, chunked.clock) == (
        one.observed, one.duplicates, one.clock)
    # the same state, value by value (snapshot bytes differed in about 1 run in 30:
    # which equal objects the pickle shares depends on how they were made)
    for name in ("detectors", "catalog", "seen"):
        assert plain(getattr(chunked, name)) == plain(getattr(one, name)), name


def test_observe_many_keeps_event_order_and_ends_runs_at_reference_data() -> None:
    first, second = Recorder(), Recorder()
    second.name = "recorder2"
    engine = Engine([first, second])
    events = [order("a", at(1)), order("a", at(1)),  # a repeat is dropped
              Customer(event_id="cust", occurred_at=at(1), customer_id="C1", segment="S"),
              order("b", at(2)), order("c", at(3))]
    engine.observe_many(events)
    assert first.observed == second.observed == ["a", "b", "c"]
    assert (engine.observed, engine.duplicates, engine.clock) == (4, 1, at(3))
    assert engine.catalog.segment_of("C1") == "S"


def test_chunked_replay_interleaves_each_detectors_ticks_with_its_events() -> None:
    # a run spans day boundaries: each detector still meets its ticks between the same
    # events, and the findings of a tick come out where the tick stands in the stream

    class Timeline(Recorder):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name
            self.timeline: list[str] = []

        def observe(self, event: Event, ctx: Context) -> list[Finding]:
            self.timeline.append(event.event_id)
            return super().observe(event, ctx)

        def tick(self, now: datetime, ctx: Context) -> list[Finding]:
            self.timeline.append(now.date().isoformat())
            return super().tick(now, ctx)

    events = [order("o1", at(0, 10)), order("o2", at(0, 15)), order("o3", at(3, 9)),
              order("o4", at(4, 0)), order("o5", at(4, 1))]
    runs = {}
    for chunk in (1, 3, 100):
        first, second = Timeline("first"), Timeline("second")
        found = list(replay(Engine([first, second]), events, chunk=chunk))
        runs[chunk] = ([(f.detector, f.occurred_at) for f in found], first.timeline,
                       second.timeline)
    assert runs[1] == runs[3] == runs[100]
    findings, timeline, _ = runs[100]
    assert timeline == ["o1", "o2", "2024-03-05", "2024-03-06", "2024-03-07", "o3",
                        "2024-03-08", "o4", "o5", "2024-03-09"]
    # at each tick, the first detector's finding, then the second's
    assert findings[:2] == [("first", at(1)), ("second", at(1))]


# snapshots


def test_snapshot_restore_mid_stream_gives_identical_findings(
        stream: tuple[Event, ...]) -> None:
    split = len(stream) * 3 // 5
    head, tail = stream[:split], stream[split:]

    straight = Engine(unit_detectors())
    list(replay(straight, head))
    expected = to_dicts(list(replay(straight, tail)))
    assert expected, "nothing happens after the split: the comparison would be vacuous"

    interrupted = Engine(unit_detectors())
    list(replay(interrupted, head))
    blob = interrupted.snapshot()
    restored = Engine.restore(blob, detectors=unit_detectors())
    assert (restored.observed, restored.duplicates, restored.clock) == (
        interrupted.observed, interrupted.duplicates, interrupted.clock)
    assert restored.catalog == interrupted.catalog
    # redelivered events from before the snapshot are still recognised
    assert restored.observe(head[-1]) == [] and restored.duplicates == 1
    restored.duplicates = 0
    assert to_dicts(list(replay(restored, tail))) == expected
    assert {f["detector"] for f in expected} == set(registered())


def test_snapshot_header_records_versions_and_thresholds() -> None:
    engine = Engine([DriftDetector(min_overdue_days=9.0)])
    header = snapshot.read_header(engine.snapshot())
    assert header["versions"] == snapshot.versions()
    assert header["detectors"]["drift"]["min_overdue_days"] == 9.0


def test_restore_refuses_other_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    blob = Engine([DriftDetector()]).snapshot()
    here = snapshot.versions()
    monkeypatch.setattr(snapshot, "versions", lambda: {**here, "river": "0.0.1"})
    with pytest.raises(snapshot.SnapshotError, match="river") as info:
        Engine.restore(blob, detectors=[DriftDetector()])
    message = str(info.value)
    assert here["river"] in message and "0.0.1" in message
    assert "python" not in message and "pickle_protocol" not in message  # only river differs


def test_restore_refuses_bad_magic_and_corrupt_payload() -> None:
    blob = Engine([DriftDetector()]).snapshot()
    with pytest.raises(snapshot.SnapshotError, match="magic"):
        Engine.restore(b"PK\x03\x04" + blob[4:], detectors=[DriftDetector()])
    with pytest.raises(snapshot.SnapshotError, match="magic"):
        Engine.restore(gzip.compress(blob), detectors=[DriftDetector()])
    header_end = blob.index(b"\n", len(snapshot.MAGIC)) + 1
    with pytest.raises(snapshot.SnapshotError, match="corrupt"):
        Engine.restore(blob[:header_end] + b"not gzip at all", detectors=[DriftDetector()])


@pytest.mark.parametrize("damage", ["truncated", "garbled"])
def test_restore_refuses_a_damaged_header_with_snapshot_error(damage: str) -> None:
    blob = Engine([DriftDetector()]).snapshot()
    if damage == "truncated":
        broken = blob[: len(snapshot.MAGIC) + 20]
    else:
        broken = snapshot.MAGIC + b"{not json\n" + blob.split(b"\n", 2)[2]
    with pytest.raises(snapshot.SnapshotError):
        Engine.restore(broken, detectors=[DriftDetector()])


def test_restore_refuses_another_set_of_detectors() -> None:
    blob = Engine([DriftDetector(), CrossSellDetector()]).snapshot()
    with pytest.raises(snapshot.SnapshotError, match="cross_sell"):
        Engine.restore(blob, detectors=[DriftDetector()])


def test_restore_applies_new_thresholds_but_refuses_changed_global_ones(
        stream: tuple[Event, ...]) -> None:
    engine = Engine([DriftDetector(), CrossSellDetector()])
    for event in stream[:600]:
        engine.observe(event)
    blob = engine.snapshot()
    tuned = DriftDetector(min_overdue_days=40.0)
    tuned.set_overrides({("team", "North"): {"lost_probability": 0.9}})
    restored = Engine.restore(blob, detectors=[CrossSellDetector(), tuned])
    drift = restored.detectors[1]
    assert isinstance(drift, DriftDetector)
    assert drift.params.min_overdue_days == 40.0
    assert drift.overrides == {("team", "North"): {"lost_probability": 0.9}}
    original = engine.detectors[0]
    assert isinstance(original, DriftDetector)
    assert set(drift.customers) == set(original.customers)  # what was learned is kept
    with pytest.raises(snapshot.SnapshotError, match=r"cross_sell\.half_life_days"):
        Engine.restore(blob, detectors=[DriftDetector(), CrossSellDetector(half_life_days=30.0)])


def test_restore_uses_the_dedup_retention_it_is_given() -> None:
    blob = Engine([DriftDetector()], dedup_retention=timedelta(days=35)).snapshot()
    restored = Engine.restore(blob, detectors=[DriftDetector()],
                              dedup_retention=timedelta(days=7))
    assert restored.seen.retention == timedelta(days=7)


def test_restore_refuses_a_snapshot_of_an_older_state_format() -> None:
    engine = Engine([DriftDetector()])
    blob = engine.snapshot()
    header = snapshot.read_header(blob)
    del header["versions"]["state_format"]  # as written before the format was recorded
    end = blob.index(b"\n", len(snapshot.MAGIC))
    old = snapshot.MAGIC + json.dumps(header, sort_keys=True).encode() + blob[end:]
    with pytest.raises(snapshot.SnapshotError, match="state_format None"):
        Engine.restore(old, detectors=[DriftDetector()])


def test_a_snapshot_between_ticks_saves_what_detectors_hold_for_the_next_tick(
        retail: list[Event]) -> None:
    # the live engine learns events as they come and ticks on the wall clock: between
    # ticks, detectors hold what they will report at the next one (the margin detector's
    # closed periods). A snapshot taken then (at a stop) once failed on a type the state
    # codec did not allow, and the engine stopped without saving.
    from sia.detectors.config import load_detectors

    engine = Engine(load_detectors(None))
    saved = 0
    for i, event in enumerate(retail, 1):
        engine.observe(event)
        if i % 1000 == 0:
            restored = Engine.restore(engine.snapshot(), detectors=load_detectors(None))
            assert restored.observed == engine.observed
            saved += 1
    assert saved == len(retail) // 1000
    now = max(e.occurred_at for e in retail) + timedelta(days=1)
    restored = Engine.restore(engine.snapshot(), detectors=load_detectors(None))
    expected = to_dicts(engine.tick(now))
    assert any(f["detector"] == "margin" for f in expected)  # what was held comes out
    assert to_dicts(restored.tick(now)) == expected
