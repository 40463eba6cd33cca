"""`sia bench --kafka`: events a second through Kafka, against what bounds them, in one run.

On the same events, as `sia produce` turns them into messages:
- engine (in this process, no Kafka): sia.bench.bench's engine, limit and
  end-to-end loops; `replay_partitioned` with the deployment's partition counts; and
  the workers' own loop without Kafka or Faust (decode, observe, forward by rep,
  checkpoint every touched partition per batch), timed step by step;
- noop: a real Faust worker (sia.transports.kafka.noop) whose per-event agent only
  counts: the floor any Faust agent pays;
- raw: one aiokafka consumer in this process, every partition assigned, decoding every
  message with `codec.decode_event` (reads the noop's topic afterwards);
- sia: real `sia worker` processes, one and then two (SIA_KAFKA_CLOCK=event, the
  configured table store, each worker its own SQLite alert store in a temporary
  folder, no Redis).

Each Faust group gets a fresh app id (topics and consumer group never shared). Its
workers start on an empty events topic; once the coordinator reports the group Stable
with every worker a member (polled every 50 ms) and a settling second has passed (Faust
recovers its empty tables), the clock starts (t0) and the events topic's messages,
encoded beforehand, are sent at full speed (`send_s`, usually much shorter than the
run; the bench process's CPU is reported). The clock stops when the group's committed
offsets reach the end offsets of every topic it consumes (for SIA: events, events by
rep and alerts, so rep-level detectors and alert storage are included), polled every
0.1 s. Faust commits every BROKER_COMMIT_INTERVAL seconds (default 2.8 s); the bench
sets it to `commit_interval` (0.2 s) for its workers, which bounds the resolution.
Nothing is subtracted. CPU: utime + stime of each worker, the broker (when it is the
local one of scripts/services.sh) and this process (/proc/<pid>/stat), and the busy time
of the whole machine (/proc/stat) between t0 and the end; `other_busy_cores` is the
machine's busy time not accounted for by those processes (other work on the machine).
"""

from __future__ import annotations

import asyncio
import gc
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sia.bench.http_bench import TICKS, process_cpu  # one /proc reader for every bench
from sia.config import config_dir
from sia.events.models import Event
from sia.settings import Settings
from sia.transports.kafka import codec, sharing
from sia.transports.kafka.topics import Topics

BROKER_PID_FILE = Path("/tmp/sia-kafka/kafka.pid")  # where scripts/services.sh keeps it
STABLE_POLL_S = 0.05
OFFSET_POLL_S = 0.1
SETTLE_S = 1.0


class NoBroker(RuntimeError):
    """No Kafka broker answers at the configured address."""


class BenchFailed(RuntimeError):
    """A measured process died or did not finish in time; the text has its log tail."""


# -- CPU, from /proc ------------------------------------------------------------------


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy since boot (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / TICKS  # minus idle and iowait


def broker_pid() -> int | None:
    """The local test broker's pid (scripts/services.sh), when it runs on this machine."""
    try:
        pid = int(BROKER_PID_FILE.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"kafka.Kafka" in cmdline else None


@dataclass(frozen=True)
class Snapshot:
    """Wall clock and CPU counters at one instant."""

    wall: float
    cpu: dict[str, float | None]
    machine: float

    @classmethod
    def take(cls, pids: dict[str, int]) -> Snapshot:
        """Read the clock and every counter now."""
        return cls(time.monotonic(), {name: process_cpu(pid) for name, pid in pids.items()},
                   machine_busy())


def usage(start: Snapshot, end: Snapshot) -> dict[str, Any]:
    """CPU seconds and CPU/wall of each process, and busy cores of the machine."""
    wall = end.wall - start.wall
    out: dict[str, Any] = {}
    for name, before in start.cpu.items():
        after = end.cpu.get(name)
        if before is None or after is None:
            out[name] = None
            continue
        out[name] = {"cpu_s": round(after - before, 2),
                     "cpu_per_wall": round((after - before) / wall, 3) if wall else None}
    if not wall:
        return out
    busy = (end.machine - start.machine) / wall
    ours = sum(v["cpu_per_wall"] for v in out.values() if v is not None)
    out["machine_busy_cores"] = round(busy, 3)
    out["other_busy_cores"] = round(max(busy - ours, 0.0), 3)  # work not measured here
    return out


# -- offsets, read from outside -------------------------------------------------------


class Offsets:
    """End offsets of topics and a group's state and committed offsets, from a client
    that belongs to no group. The app ids in `created` have their topics deleted on
    exit (Faust's own included): a bench leaves nothing on the broker."""

    def __init__(self, bootstrap: str) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.created: list[str] = []

    async def __aenter__(self) -> Offsets:
        await self.consumer.start()
        await self.admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            names = [t for t in await self.admin.list_topics()
                     if any(t.startswith(f"{app_id}-") for app_id in self.created)]
            if names:
                await self.admin.delete_topics(names)
        finally:
            await self.consumer.stop()
            await self.admin.close()

    async def ends(self, parts: dict[str, int]) -> dict[str, int]:
        """Sum of end offsets per topic (topic -> partition count)."""
        from aiokafka import TopicPartition

        tps = [TopicPartition(t, p) for t, n in parts.items() for p in range(n)]
        found = await self.consumer.end_offsets(tps)
        return {t: sum(found[tp] for tp in tps if tp.topic == t) for t in parts}

    async def committed(self, group: str, parts: dict[str, int]) -> dict[str, int]:
        """Sum of the group's committed offsets per topic (none yet counts as 0)."""
        from aiokafka import TopicPartition
        from aiokafka.errors import KafkaError

        tps = [TopicPartition(t, p) for t, n in parts.items() for p in range(n)]
        try:
            found = await self.admin.list_consumer_group_offsets(group, partitions=tps)
        except KafkaError as exc:
            if not exc.retriable:
                raise
            found = {}  # the coordinator is not ready (a new broker): nothing yet
        return {t: sum(max(found[tp].offset, 0) for tp in tps
                       if tp.topic == t and tp in found) for t in parts}

    async def group(self, group: str) -> tuple[str, int]:
        """The group's state (Stable, PreparingRebalance, ...) and its member count;
        ("Unknown", 0) while its coordinator is not available, as on a broker just
        started, before it has made its offsets topic."""
        from aiokafka.errors import KafkaError

        try:
            responses = await self.admin.describe_consumer_groups([group])
        except KafkaError as exc:
            if not exc.retriable:
                raise
            return "Unknown", 0
        for response in responses:
            for described in response.groups:
                if described[1] == group:
                    return str(described[2]), len(described[5])
        return "Dead", 0


# -- processes ------------------------------------------------------------------------


@dataclass
class Worker:
    """A measured worker process and its log."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def spawn(cls, name: str, args: list[str], env: dict[str, str], workdir: Path) -> Worker:
        """Start `python -m <args>` in `workdir` (Faust writes its data folder there)."""
        log = workdir / f"{name}.log"
        with log.open("wb") as handle:
            process = subprocess.Popen([sys.executable, "-m", *args], env=env, cwd=workdir,
                                       stdout=handle, stderr=subprocess.STDOUT)
        return cls(name, process, log)

    def check(self) -> None:
        """Fail, with the end of its log, if the process has exited."""
        if self.process.poll() is not None:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
            raise BenchFailed(f"{self.name} exited with {self.process.returncode}:\n{tail}")

    def stop(self) -> None:
        """Terminate, then kill if it does not stop within 30 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _pids(workers: Sequence[Worker]) -> dict[str, int]:
    pids = {w.name: w.process.pid for w in workers}
    broker = broker_pid()
    if broker is not None:
        pids["broker"] = broker
    return pids


async def wait_stable(offsets: Offsets, group: str, workers: Sequence[Worker], *,
                      timeout: float) -> None:
    """Until the coordinator reports the group Stable with every worker a member."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for w in workers:
            w.check()
        state, members = await offsets.group(group)
        if state == "Stable" and members == len(workers):
            return
        await asyncio.sleep(STABLE_POLL_S)
    raise BenchFailed(f"group {group} not Stable with {len(workers)} members in {timeout:.0f} s")


async def wait_drained(offsets: Offsets, group: str, parts: dict[str, int],
                       workers: Sequence[Worker], *, timeout: float
                       ) -> tuple[dict[str, int], int]:
    """Until the group's committed offsets reach the end of every topic it consumes
    (committed read before ends, so what a commit caused is already in the ends).
    Also counts the polls that found the group rebalancing or short of a member: a
    rebalance mid-run replays events since the last commit (and repeats alerts)."""
    deadline, unstable = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        for w in workers:
            w.check()
        if await offsets.group(group) != ("Stable", len(workers)):
            unstable += 1
        committed = await offsets.committed(group, parts)
        ends = await offsets.ends(parts)
        if all(committed[t] >= ends[t] for t in parts):
            return ends, unstable
        await asyncio.sleep(OFFSET_POLL_S)
    raise BenchFailed(f"group {group} did not consume {sorted(parts)} in {timeout:.0f} s")


Message = tuple[str, bytes, bytes, int | None]  # topic, key, value, partition


def encode(events: Sequence[Event], topics: Topics) -> tuple[list[Message], list[Message]]:
    """The messages `sia produce` sends: (those of the events topic, the others)."""
    from sia.transports.kafka.producer import messages_for

    mine: list[Message] = []
    others: list[Message] = []
    for event in events:
        for message in messages_for(event, topics):
            (mine if message[0] == topics.events else others).append(message)
    return mine, others


async def send(bootstrap: str, messages: Sequence[Message]) -> None:
    """Publish encoded messages in order, with `sia produce`'s producer settings."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all",
                                max_batch_size=512 * 1024)
    await producer.start()
    try:
        pending = [await producer.send(topic, value, key=key, partition=partition)
                   for topic, key, value, partition in messages]
        await producer.flush()
        for future in pending:
            await future
    finally:
        await producer.stop()


@dataclass(frozen=True)
class GroupRun:
    """One measured consumer group: its processes, topics and the events it gets."""

    group: str
    workers: list[Worker]
    parts: dict[str, int]  # topics the group consumes -> partitions
    events_topic: str
    messages: list[Message]  # for the events topic, encoded beforehand
    timeout: float


async def measure_group(offsets: Offsets, bootstrap: str, run: GroupRun, *,
                        events: int) -> dict[str, Any]:
    """Rate and CPU of a group of worker processes: they start on an empty events topic;
    once the group is Stable with all of them, the events are sent (t0) and the clock
    runs until the group has consumed everything."""
    spawned = time.monotonic()
    try:
        await wait_stable(offsets, run.group, run.workers, timeout=run.timeout)
        await asyncio.sleep(SETTLE_S)  # Faust recovers its (empty) tables after assignment
        pids = {**_pids(run.workers), "bench": os.getpid()}
        start = Snapshot.take(pids)
        await send(bootstrap, run.messages)
        sent = time.monotonic()
        ends, unstable = await wait_drained(offsets, run.group, run.parts, run.workers,
                                            timeout=run.timeout)
        end = Snapshot.take(pids)
    finally:
        for w in run.workers:
            w.stop()
    seconds = end.wall - start.wall
    messages = ends[run.events_topic]
    if messages != len(run.messages):
        raise BenchFailed(f"{run.group}: {messages} messages on {run.events_topic}, "
                          f"{len(run.messages)} sent")
    cpu = usage(start, end)
    worker_cpu = sum(cpu[w.name]["cpu_s"] for w in run.workers if cpu[w.name])
    return {
        "workers": len(run.workers), "group": run.group,
        "startup_s": round(start.wall - spawned, 2), "send_s": round(sent - start.wall, 2),
        "seconds": round(seconds, 2), "messages": messages,
        "messages_per_s": round(messages / seconds), "events_per_s": round(events / seconds),
        "events_per_s_per_worker": round(events / seconds / len(run.workers)),
        # what a worker would do with a core to itself: independent of other work
        "events_per_worker_cpu_s": round(events / worker_cpu) if worker_cpu else None,
        "topic_ends": ends, "unstable_polls": unstable, "cpu": cpu,
    }


# -- the loops --------------------------------------------------------------------------


async def raw_loop(bootstrap: str, topic: str, partitions: int, *,
                   timeout: float) -> dict[str, Any]:
    """aiokafka consume and `codec.decode_event` of every message, all partitions, in
    this process: what any Python consumer of the topic pays at least."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        first, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        total = sum(ends.values()) - sum(first.values())
        count, cpu0, started = 0, time.process_time(), time.monotonic()
        while count < total:
            if time.monotonic() - started > timeout:
                raise BenchFailed(f"raw loop read {count} of {total} in {timeout:.0f} s")
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    codec.decode_event(record.value)
                    count += 1
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu0
    finally:
        await consumer.stop()
    return {"messages": count, "seconds": round(seconds, 3),
            "messages_per_s": round(count / seconds),
            "cpu": {"bench_process": {"cpu_s": round(cpu, 2),
                                      "cpu_per_wall": round(cpu / seconds, 3)}}}


def _message(topic: str, partition: int, offset: int, key: bytes | None,
             value: bytes) -> Any:
    """What a Faust agent receives for one Kafka message (the fields SiaApp reads)."""
    from types import SimpleNamespace

    from faust.types import TP

    message = SimpleNamespace(topic=topic, partition=partition, offset=offset, key=key,
                              value=value, tp=TP(topic, partition))
    return SimpleNamespace(value=value, message=message)


def worker_in_process(events: Sequence[Event], *, topics: Topics, batch: int,
                      make_detectors: Callable[[], Any], policy_config: Any) -> dict[str, Any]:
    """What `sia worker`'s agents compute, with no Kafka or Faust between them: the real
    `SiaApp.detect_batch` over the events topic's messages in batches of `batch`, then
    `SiaApp.detect_rep_batch` over what it forwarded by rep (progress included). Sends
    are collected instead of produced; the garbage collector runs as in a worker
    (`collect_less`). Seconds say where a worker's CPU goes: decoding (timed apart, on
    the same messages), checkpoints (after every batch: in a backlog of 10,000-event
    batches, workers take longer than `kafka_checkpoint_seconds` over each batch too),
    and the rest (detection, forwarding, encoding alerts)."""
    from sia.engine.partitions import partition_for
    from sia.settings import Settings
    from sia.transports.kafka.app import SiaApp, collect_less

    settings = Settings(kafka_app_id=topics.app_id, kafka_partitions=topics.partitions,
                        kafka_rep_partitions=topics.rep_partitions, kafka_batch=batch,
                        kafka_clock="event", kafka_checkpoint_seconds=0.0)
    sia = SiaApp(settings, make_detectors, policy_config)
    sia.app.finalize()
    forwarded: list[tuple[int, bytes | None, bytes]] = []

    def by_rep(*, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        if partition is None:
            partition = partition_for((key or b"").decode(), topics.rep_partitions)
        forwarded.append((partition, key, value))

    # collected instead of produced (setattr: these are methods of Faust's classes)
    setattr(sia.by_rep_topic, "send_soon", by_rep)  # noqa: B010
    for topic in (sia.alerts_topic, sia.dead_letter_topic):
        setattr(topic, "send_soon", lambda **message: None)  # noqa: B010
    checkpoint_seconds = [0.0]
    shared: list[tuple[int, bytes | None, bytes]] = []  # population updates

    def share(*, key: bytes | None, value: bytes, partition: int) -> None:
        shared.append((partition, key, value))

    if sia.population_topic is not None:
        setattr(sia.population_topic, "send_soon", share)  # noqa: B010
    for partitions in (sia.customers, sia.reps):
        setattr(partitions.table, "send_changelog", lambda *args, **kwargs: None)  # noqa: B010
        setattr(partitions, "checkpoint",  # noqa: B010
                _timed(partitions.checkpoint, checkpoint_seconds))

    offsets: dict[tuple[str, int], int] = {}

    def messages(topic: str, items: Sequence[tuple[int, bytes | None, bytes]]) -> list[Any]:
        out = []
        for partition, key, value in items:
            offset = offsets.get((topic, partition), 0)
            offsets[(topic, partition)] = offset + 1
            out.append(_message(topic, partition, offset, key, value))
        return out

    produced = messages(topics.events, [(m[3] or 0, m[1], m[2])
                                        for m in encode(events, topics)[0]])
    started = time.perf_counter()
    for message in produced:
        codec.decode_event(message.value)
    decode = time.perf_counter() - started
    thresholds = gc.get_threshold()
    collect_less()  # as `sia worker` runs its collector
    try:
        started = time.perf_counter()
        for i in range(0, len(produced), batch):
            sia.detect_batch(produced[i:i + batch], sia.customers)
            while shared:  # what the share-population agent does with the updates sent
                received = messages(topics.population, shared[:])
                shared.clear()
                touched = sharing.receive_updates(sia, received)
                sharing.send_updates_soon(sia, touched)
                sia.finish_batch(sia.customers, touched, checkpoint=False)  # as the agent
        rep_messages = messages(topics.events_by_rep, forwarded)
        for i in range(0, len(rep_messages), batch):
            sia.detect_rep_batch(rep_messages[i:i + batch])
        seconds = time.perf_counter() - started
    finally:
        gc.set_threshold(*thresholds)
    return {"events_per_s": round(len(events) / seconds), "seconds": round(seconds, 2),
            "messages": len(produced), "events_by_rep": len(rep_messages),
            "alerts": sia.counts["alerts"],
            "step_seconds": {"checkpoint": round(checkpoint_seconds[0], 2),
                             "decode (timed apart)": round(decode, 2),
                             "detect, forward, alerts": round(
                                 seconds - checkpoint_seconds[0] - decode, 2)}}


def _timed(function: Callable[..., Any], total: list[float]) -> Callable[..., Any]:
    """`function`, adding the seconds of each call to total[0]."""
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - started
    return timed


def engine_reference(events: Sequence[Event], factory: Any, *, topics: Topics, batch: int,
                     make_detectors: Callable[[], Any], policy_config: Any) -> dict[str, Any]:
    """In-process ceilings on the same events: the engine, JSON to engine, the
    partitioned replay (the detector work the workers share, minus Kafka) and the
    workers' loop without Kafka and Faust (decode, checkpoints and all)."""
    from sia.bench.bench import bench
    from sia.engine.partitions import replay_partitioned

    ref = bench(events, factory, repeat=1)
    fresh = [codec.decode_event(codec.encode_event(e)) for e in events]  # nothing cached
    started = time.perf_counter()
    alerts = sum(1 for _ in replay_partitioned(
        fresh, partitions=topics.partitions, rep_partitions=topics.rep_partitions,
        make_detectors=make_detectors, policy_config=policy_config,
        share_population=Settings().kafka_share_population))
    seconds = time.perf_counter() - started
    return {"engine_events_per_s": ref["events_per_s"],
            "end_to_end_events_per_s": ref["end_to_end_events_per_s"],
            "limit_events_per_s": ref["limit_events_per_s"],
            "partitioned_events_per_s": round(len(events) / seconds),
            "partitioned_alerts": alerts, "detectors": ref["detectors"],
            "worker_in_process": worker_in_process(
                events, topics=topics, batch=batch, make_detectors=make_detectors,
                policy_config=policy_config)}


# -- one run --------------------------------------------------------------------------


@dataclass(frozen=True)
class KafkaBench:
    """What one `sia bench --kafka` run measures, and where."""

    settings: Settings
    workers: tuple[int, ...] = (1, 2)
    commit_interval: float = 0.2
    config: Path | None = None
    policy_file: Path | None = None

    @property
    def bootstrap(self) -> str:
        """host:port of the configured broker."""
        from sia.transports.kafka.topics import bootstrap_servers

        return bootstrap_servers(self.settings.kafka_broker)

    def topics(self, app_id: str) -> Topics:
        """The topics of a fresh app id, with the configured partition counts."""
        return Topics(app_id, self.settings.kafka_partitions,
                      self.settings.kafka_rep_partitions)

    def sia_env(self, app_id: str, workdir: Path) -> dict[str, str]:
        """A worker's environment: the bench's settings, a fresh app id, event time."""
        s = self.settings
        env = {k: v for k, v in os.environ.items() if k != "SIA_REDIS_URL"}
        env.update({
            "SIA_KAFKA_APP_ID": app_id, "SIA_KAFKA_BROKER": s.kafka_broker,
            "SIA_KAFKA_PARTITIONS": str(s.kafka_partitions),
            "SIA_KAFKA_REP_PARTITIONS": str(s.kafka_rep_partitions),
            "SIA_KAFKA_BATCH": str(s.kafka_batch),
            "SIA_KAFKA_BATCH_SECONDS": str(s.kafka_batch_seconds),
            "SIA_KAFKA_CHECKPOINT_SECONDS": str(s.kafka_checkpoint_seconds),
            "SIA_KAFKA_STORE": s.kafka_store, "SIA_KAFKA_CLOCK": "event",
            "SIA_CONFIG_DIR": str(config_dir().resolve()),
            "BROKER_COMMIT_INTERVAL": str(self.commit_interval)})
        return env

    def worker_args(self) -> list[str]:
        """`sia worker` with the bench's configuration files."""
        args = ["sia", "worker", "--loglevel", "warning"]
        if self.config is not None:
            args += ["--config", str(self.config.resolve())]
        if self.policy_file is not None:
            args += ["--policy-file", str(self.policy_file.resolve())]
        return args

    def timeout(self, messages: int) -> float:
        """Generous: a worker slower than 100 messages a second has a problem."""
        return 120.0 + messages / 100


async def check_broker(bootstrap: str, setting: str) -> None:
    """Raise NoBroker, naming the setting, unless a broker returns metadata."""
    from aiokafka import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await client.bootstrap()
    except Exception as exc:
        raise NoBroker(f"no Kafka broker answers at {bootstrap} (SIA_KAFKA_BROKER="
                       f"{setting}): {exc}. Start one (scripts/services.sh) or set "
                       "SIA_KAFKA_BROKER") from None
    finally:
        await client.close()


async def prepare(events: Sequence[Event], bench: KafkaBench,
                  offsets: Offsets) -> tuple[Topics, list[Message]]:
    """A fresh app id's topics, created, with everything but the events topic already
    sent (nothing measured reads it); the events topic's messages, encoded, to send."""
    from sia.transports.kafka.topics import create_topics

    topics = bench.topics(f"bench{uuid.uuid4().hex[:10]}")
    offsets.created.append(topics.app_id)
    await create_topics(bench.bootstrap, topics)
    mine, others = encode(events, topics)
    await send(bench.bootstrap, others)
    return topics, mine


async def run_noop(offsets: Offsets, bench: KafkaBench, events: Sequence[Event],
                   workdir: Path) -> tuple[Topics, dict[str, Any]]:
    """The counting Faust agent, in its own consumer group, on a fresh events topic."""
    topics, messages = await prepare(events, bench, offsets)
    group = f"{topics.app_id}-noop"
    env = {**os.environ, "SIA_BENCH_NOOP_APP_ID": group, "SIA_BENCH_NOOP_TOPIC": topics.events,
           "SIA_BENCH_NOOP_BROKER": bench.settings.kafka_broker,
           "SIA_BENCH_NOOP_PARTITIONS": str(topics.partitions),
           "BROKER_COMMIT_INTERVAL": str(bench.commit_interval)}
    worker = Worker.spawn("noop", ["sia.transports.kafka.noop"], env, workdir)
    run = GroupRun(group, [worker], {topics.events: topics.partitions}, topics.events,
                   messages, bench.timeout(len(messages)))
    return topics, await measure_group(offsets, bench.bootstrap, run, events=len(events))


async def run_sia(offsets: Offsets, bench: KafkaBench, events: Sequence[Event], count: int,
                  workdir: Path) -> dict[str, Any]:
    """`count` SIA workers, a fresh app id: topics, consumer group and alert stores."""
    topics, messages = await prepare(events, bench, offsets)
    folder = workdir / topics.app_id
    folder.mkdir()
    workers = []
    for i in range(count):
        env = bench.sia_env(topics.app_id, folder)
        env["SIA_DATABASE_URL"] = f"sqlite:///{folder}/alerts-{i + 1}.db"
        workers.append(Worker.spawn(f"worker{i + 1}", bench.worker_args(), env, folder))
    parts = {topics.events: topics.partitions, topics.events_by_rep: topics.rep_partitions,
             topics.alerts: topics.partitions}
    if Settings().kafka_share_population:  # workers wait for each other's updates
        parts[topics.population] = topics.partitions
    run = GroupRun(topics.app_id, workers, parts, topics.events, messages,
                   bench.timeout(len(messages)))
    result = await measure_group(offsets, bench.bootstrap, run, events=len(events))
    extra = await offsets.ends({topics.dead_letter: 1,
                                topics.changelog("engine-state"): topics.partitions})
    result["alerts"] = result["topic_ends"][topics.alerts]
    result["events_by_rep"] = result["topic_ends"][topics.events_by_rep]
    result["dead_letters"] = extra[topics.dead_letter]
    result["checkpoints"] = extra[topics.changelog("engine-state")]
    return result


def code_state() -> dict[str, Any]:
    """Where the measured code comes from: its folder, and its git commit and
    uncommitted files under sia/ when it is a checkout (workers import the same)."""
    import sia

    root = Path(sia.__file__).resolve().parents[1]
    state: dict[str, Any] = {"path": str(root)}

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                              text=True, timeout=10, check=True).stdout

    try:
        state["commit"] = git("rev-parse", "--short", "HEAD").strip()
        state["modified"] = [line[3:] for line in git("status", "--porcelain", "--",
                                                      "sia").splitlines()]
    except (OSError, subprocess.SubprocessError):
        pass
    return state


def conditions(bench: KafkaBench, events: int) -> dict[str, Any]:
    """The versions, settings and machine a run's figures belong to."""
    s = bench.settings
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "events": events,
        "broker": bench.bootstrap, "broker_pid_measured": broker_pid() is not None,
        "partitions": s.kafka_partitions, "rep_partitions": s.kafka_rep_partitions,
        "batch": s.kafka_batch, "batch_seconds": s.kafka_batch_seconds,
        "checkpoint_seconds": s.kafka_checkpoint_seconds, "table_store": s.kafka_store,
        "commit_interval_s": bench.commit_interval,
        "alert_store": "SQLite per worker, no Redis", "clock": "event",
        "cpu_count": os.cpu_count(), "load_average_at_start": list(os.getloadavg()),
        "code": code_state(),
        "versions": {"sia": version("sia"), "python": platform.python_version(),
                     "faust": version("faust-streaming"), "aiokafka": version("aiokafka")},
    }


async def _run(bench: KafkaBench, events: Sequence[Event], workdir: Path,
               result: dict[str, Any]) -> None:
    async with Offsets(bench.bootstrap) as offsets:
        topics, result["noop"] = await run_noop(offsets, bench, events, workdir)
        messages = result["noop"]["messages"]
        result["conditions"]["messages"] = messages
        result["raw"] = await raw_loop(bench.bootstrap, topics.events, topics.partitions,
                                       timeout=bench.timeout(messages))
        result["raw"]["events_per_s"] = round(len(events) / result["raw"]["seconds"])
        result["sia"] = [await run_sia(offsets, bench, events, n, workdir)
                         for n in bench.workers]


def run(events: Sequence[Event], bench: KafkaBench, *, reference: bool = True
        ) -> dict[str, Any]:
    """Every loop on the same events, in one run: see the module's docstring."""
    from sia.detectors.config import load_detectors
    from sia.policy import Policy, load_policy

    asyncio.run(check_broker(bench.bootstrap, bench.settings.kafka_broker))
    result: dict[str, Any] = {"conditions": conditions(bench, len(events))}
    if reference:
        def factory() -> tuple[Any, Policy]:
            return load_detectors(bench.config), Policy(load_policy(bench.policy_file))

        result["engine"] = engine_reference(
            events, factory, topics=bench.topics("reference"), batch=bench.settings.kafka_batch,
            make_detectors=lambda: load_detectors(bench.config),
            policy_config=load_policy(bench.policy_file))
    with tempfile.TemporaryDirectory(prefix="sia-kafka-bench-") as tmp:
        asyncio.run(_run(bench, events, Path(tmp), result))
    result["conditions"]["load_average_at_end"] = list(os.getloadavg())
    return result
