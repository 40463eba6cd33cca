"""`sia bench --http`: the front door of `sia serve`, measured against the engine behind it.

Every figure comes from real `sia serve` processes (one per measurement, on a free port
and a fresh data folder, so the server never shares the bench client's interpreter or
GIL), fed over HTTP by httpx clients in threads of this process, in one run:

- engine: the engine's own events/s on the same events, without HTTP
  (sia.bench.bench's engine loop: `Engine` + policy, CPU seconds of this process,
  best of `repeat`), measured before any server starts;
- ingest (per batch size, 100 and 500 events): `clients` clients post every event as
  fast as answers come back, while the server's engine process learns them. Accepted
  events/s is accepted events over the wall time from the first request sent to the
  last answer received; latency is each request's
  send-to-answer time. Then the bench waits until the live engine has learned
  everything and reads the live engine's own rate from /v1/status
  (`engine.events_per_second`: events over the wall seconds it spent learning);
- ingest_engine_off: the same with the engine process paused (SIGSTOP; labelled as such:
  what the front door costs alone, never used for a goal);
- paced: batches of 100 at half the engine's events/s, from `clients` clients on a
  fixed schedule (request i due i * 100 / rate s after the start); send-to-answer
  latency, and due-to-answer latency (when the server falls behind, a request waits
  for a free client after it was due: that wait counts in the second only);
- paced_share_of_http: the same at half the events/s the first ingest run accepted
  with the engine learning (what the server sustains, not the engine alone): a
  diagnostic, never used for a goal;
- event_to_send: a server with a webhook receiver (routing: every alert at once, no
  grouping wait, digest, budget or quiet hours; SIA_SERVE_DELIVER_SECONDS small) and a
  local HTTP receiver in this process. Events are moved a whole number of days so the
  stream ends within a day of now; the history cut-off (SIA_DELIVERY_MAX_AGE_DAYS) is
  set to just before the paced window, so the warm-up's alerts are history and never
  sent. The warm-up is posted fast (one client, in order, batches of 1,000), then the
  rest at `delivery_rate` events/s in small batches. Each alert received is traced to
  the request that raised it: the first paced request holding an event at or after the
  alert's time (an alert at a day boundary is raised by the first event past it).
  Latency: from that request being sent (and, separately, answered) to the receiver
  getting the message; `stages_ms` splits it with the server's own times (its store,
  read after it stopped): request sent -> alert stored -> message planned -> received.

The servers read event time only (SIA_SERVE_CLOCK=event): the stream is history
replayed in seconds, which a wall clock would tick past. Ingestion accepts events up
to a year behind the newest (SIA_EVENT_MAX_LATE_DAYS): four clients posting a year of
history in seconds commit batches out of order by weeks, which a live CRM posting as
things happen never does (the engine itself keeps its own 7-day bound; what it refused
is reported as `engine_refused`).

CPU: utime + stime of the server process (/proc/<pid>/stat) and this process's CPU
time over each measurement. Both share the machine's cores with each other and with
whatever else runs (load averages are recorded).
"""

from __future__ import annotations

import bisect
import gc
import itertools
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from sia.bench.delivery_bench import ROUTES, Receiver  # the same webhook route and receiver
from sia.detectors.base import Detector
from sia.events.models import Event
from sia.policy import Policy

Factory = Callable[[], tuple[list[Detector[Any]], Policy]]
TICKS = os.sysconf("SC_CLK_TCK")
KEEP_ENV = ("SIA_CONFIG_DIR",)  # the only SIA_* settings of the caller a server inherits
LATE_DAYS = 365.0  # see the module's docstring
GOALS = {
    "http_to_engine": "HTTP ingestion events/s (engine learning) / engine events/s >= 1, "
                      "every batch size",
    "paced_p99_ms": "p99 response latency <= 100 ms, batches of 100 at half the engine's "
                    "events/s",
    "event_to_send_p99_ms": "event-to-send p99 < 1000 ms at a steady 200 events/s",
}


class BenchFailed(RuntimeError):
    """A server did not start, stopped, or did not finish in time (the text has its log)."""


@dataclass(frozen=True)
class HttpBenchOptions:
    """What `sia bench --http` runs; the defaults are issue 14's measurement."""

    batches: tuple[int, ...] = (100, 500)
    clients: int = 4
    repeat: int = 1  # engine loop: best of
    paced_share: float = 0.5  # of the engine's events/s
    paced_batch: int = 100
    paced_seconds: float = 30.0  # at most (fewer when the events run out)
    delivery_rate: float = 200.0
    delivery_seconds: float = 30.0
    delivery_batch: int = 10
    deliver_every: float = 0.05  # SIA_SERVE_DELIVER_SECONDS
    engine_off: bool = True  # also measure ingestion with no live engine running
    config: Path | None = None
    policy_file: Path | None = None
    timeout: float = 900.0  # for any one wait (start, learning, a post run)


# -- a server process -------------------------------------------------------------------


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_cpu(pid: int) -> float | None:
    """utime + stime of a process in seconds; None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name may hold spaces; fields from 3 on
    return (int(fields[11]) + int(fields[12])) / TICKS


def code_root() -> Path:
    """The folder holding the `sia` package this process imports (servers import it too)."""
    import sia

    return Path(sia.__file__).resolve().parents[1]


def server_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without its SIA_* settings (a server must not reach the
    caller's database, Redis or notifiers), plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SIA_") or k in KEEP_ENV}
    root = str(code_root())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.update({"SIA_FEEDBACK_SECRET": secrets.token_hex(32), "SIA_SERVE_CLOCK": "event",
                "SIA_EVENT_MAX_LATE_DAYS": str(LATE_DAYS), **extra})
    return env


def keys_template(folder: Path) -> Path:
    """A data folder holding one crm key, made with `sia keys create` (its last line of
    stdout); each server's fresh data folder starts as a copy of it."""
    data = folder / "keys-template"
    result = subprocess.run(
        [sys.executable, "-m", "sia", "keys", "create", "--role", "crm", "--name", "bench",
         "--data-dir", str(data)], capture_output=True, text=True, cwd=code_root(),
        env=server_env({}), timeout=120)
    if result.returncode != 0:
        raise BenchFailed(f"sia keys create failed:\n{result.stderr}")
    (data / "crm.key").write_text(result.stdout.strip().splitlines()[-1])
    return data


@dataclass
class Server:
    """A running `sia serve` process, with a crm key."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    key: str
    log: Path

    def client(self, timeout: float = 120.0) -> httpx.Client:
        """A client that sends the crm key."""
        return httpx.Client(base_url=self.url, timeout=timeout,
                            headers={"Authorization": f"Bearer {self.key}"})

    def check(self) -> None:
        """Fail, with the end of its log, if the process has exited."""
        if self.proc.poll() is not None:
            raise BenchFailed(f"{self.name} exited with {self.proc.returncode}:\n"
                              f"{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        """The end of the server's log."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def status(self) -> dict[str, Any]:
        """GET /v1/status."""
        with self.client(30) as c:
            answer = c.get("/v1/status")
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def wait_learned(self, timeout: float) -> float:
        """Seconds until the live engine has learned every accepted event (lag 0)."""
        started = time.perf_counter()
        while self.status()["lag"] > 0:
            self.check()
            if time.perf_counter() - started > timeout:
                raise BenchFailed(f"{self.name}: engine still behind after {timeout:g} s")
            time.sleep(0.1)
        return time.perf_counter() - started

    def cpu(self) -> float | None:
        """CPU seconds the server process has used so far."""
        return process_cpu(self.proc.pid)

    def stop(self) -> None:
        """SIGTERM (graceful: the state is saved), then kill if it does not end in 60 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def running(name: str, folder: Path, template: Path, options: HttpBenchOptions, *,
            env: dict[str, str] | None = None, routes: Path | None = None,
            engine: bool = True) -> Iterator[Server]:
    """A server on a free port and a fresh data folder (a copy of `template`), once it
    answers /healthz; stopped after."""
    data = folder / name
    shutil.copytree(template, data)
    port = free_port()
    args = ["sia", "serve", "--data-dir", str(data), "--port", str(port)]
    args += ["--routes", str(routes)] if routes else []
    args += ["--config", str(options.config)] if options.config else []
    args += ["--policy", str(options.policy_file)] if options.policy_file else []
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", *args], stdout=out,
                                stderr=subprocess.STDOUT, cwd=code_root(),
                                env=server_env(env or {}))
    server = Server(name, proc, f"http://127.0.0.1:{port}",
                    (template / "crm.key").read_text().strip(), log)
    paused: int | None = None
    try:
        _wait_healthy(server, options.timeout)
        if not engine:  # the front door alone: its engine process is stopped (SIGSTOP)
            paused = int(server.status()["engine"]["pid"])
            os.kill(paused, signal.SIGSTOP)
        yield server
    finally:
        if paused is not None:
            os.kill(paused, signal.SIGCONT)
        server.stop()


def _wait_healthy(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        server.check()
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise BenchFailed(f"{server.name} did not start:\n{server.tail()}")
        time.sleep(0.1)


# -- posting ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    """One request: when it was due (paced runs), sent and answered (perf_counter), and
    what the answer counted."""

    index: int
    due: float | None
    sent: float
    answered: float
    accepted: int
    duplicates: int
    rejected: int
    refused: int  # 429 answers before this one went through


@dataclass
class Posted:
    """Every request of a run, in the order of their index."""

    requests: list[Sent] = field(default_factory=list)
    client_cpu_s: float = 0.0

    @property
    def seconds(self) -> float:
        """From the first request sent to the last answer received."""
        return max(r.answered for r in self.requests) - min(r.sent for r in self.requests)

    def total(self, what: str) -> int:
        """Sum of accepted, duplicates, rejected or refused."""
        return sum(int(getattr(r, what)) for r in self.requests)


def bodies(lines: Sequence[str], size: int) -> list[bytes]:
    """`{"events": [...]}` request bodies of `size` events each (the last may be short)."""
    return [('{"events":[' + ",".join(lines[i:i + size]) + "]}").encode()
            for i in range(0, len(lines), size)]


def post(server: Server, requests: Sequence[bytes], *, clients: int,
         interval: float | None = None, timeout: float = 900.0) -> Posted:
    """Post every body from `clients` threads, each taking the next body in order; with
    `interval`, body i is sent no earlier than i * interval s after the start (paced)."""
    lock = threading.Lock()
    order = iter(range(len(requests)))
    results: list[Sent] = []
    failures: list[Exception] = []
    start = time.perf_counter() + 0.2  # time for every thread to be ready

    def client() -> None:
        with server.client(timeout) as c:
            while not failures:
                with lock:
                    index = next(order, None)
                if index is None:
                    return
                due = None if interval is None else start + index * interval
                if due is not None:
                    time.sleep(max(due - time.perf_counter(), 0.0))
                try:
                    sent = _post_one(c, index, requests[index], due)
                except Exception as exc:  # stop every client, report it below
                    failures.append(exc)
                    return
                with lock:
                    results.append(sent)

    cpu = time.process_time()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        server.check()
        raise BenchFailed(f"posting to {server.name} failed: {failures[0]!r}")
    return Posted(sorted(results, key=lambda r: r.index), time.process_time() - cpu)


def _post_one(client: httpx.Client, index: int, body: bytes, due: float | None) -> Sent:
    """One request, repeated after Retry-After while the server answers 429 (sent: the
    first attempt)."""
    refused = 0
    first: float | None = None
    while True:
        sent = time.perf_counter()
        first = sent if first is None else first
        answer = client.post("/v1/events", content=body,
                             headers={"Content-Type": "application/json"})
        answered = time.perf_counter()
        if answer.status_code != 429:
            break
        refused += 1
        time.sleep(float(answer.headers.get("Retry-After", "1")))
    if answer.status_code != 200:
        raise BenchFailed(f"request {index}: {answer.status_code} {answer.text[:500]}")
    counts = answer.json()
    return Sent(index, due, first, answered, counts["accepted"], counts["duplicates"],
                counts["rejected"], refused)


# -- figures ----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank q-quantile (0 < q <= 1) of `values` (not empty)."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def latency_ms(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p99 and max in milliseconds of latencies in seconds."""
    if not values:
        return {"p50": None, "p99": None, "max": None}
    return {"p50": round(1000 * percentile(values, 0.5), 1),
            "p99": round(1000 * percentile(values, 0.99), 1),
            "max": round(1000 * max(values), 1)}


def _counts(posted: Posted, sent_events: int) -> dict[str, Any]:
    return {"events_sent": sent_events, "requests": len(posted.requests),
            "accepted": posted.total("accepted"), "duplicates": posted.total("duplicates"),
            "rejected": posted.total("rejected"), "refused_429": posted.total("refused")}


def _cpu(before: float | None, after: float | None) -> float | None:
    return round(after - before, 2) if before is not None and after is not None else None


def _engine_of(status: dict[str, Any]) -> dict[str, Any]:
    engine = status.get("engine") or {}
    return {"live_engine_events_per_s": engine.get("events_per_second"),
            "engine_events": engine.get("events"), "engine_learned": engine.get("learned"),
            "engine_refused": (engine["events"] - engine["learned"] - engine["duplicates"])
            if engine else None}


# -- the measurements -------------------------------------------------------------------


def engine_rate(events: Sequence[Event], factory: Factory, repeat: int) -> dict[str, Any]:
    """The engine's events/s without HTTP: sia.bench.bench's engine loop, CPU time,
    best of `repeat`."""
    from sia.bench.bench import _engine_run

    seconds = []
    for _ in range(repeat):
        elapsed, engine = _engine_run(events, factory)
        seconds.append(elapsed)
        del engine
        gc.collect()
    return {"events_per_s": round(len(events) / min(seconds)), "cpu_s": round(min(seconds), 2),
            "repeat": repeat,
            "measured": "Engine + policy over the events in this process, no HTTP "
                        "(sia.bench.bench), events / CPU seconds"}


def ingest(lines: Sequence[str], batch: int, folder: Path, template: Path,
           options: HttpBenchOptions, *, engine: bool = True) -> dict[str, Any]:
    """Every event posted as fast as answers come, in batches of `batch`."""
    name = f"ingest-{batch}" + ("" if engine else "-engine-off")
    requests = bodies(lines, batch)
    with running(name, folder, template, options, engine=engine) as server:
        cpu = server.cpu()
        posted = post(server, requests, clients=options.clients, timeout=options.timeout)
        result = {"batch": batch, "clients": options.clients, **_counts(posted, len(lines)),
                  "seconds": round(posted.seconds, 2),
                  "accepted_events_per_s": round(posted.total("accepted") / posted.seconds),
                  "latency_ms": latency_ms([r.answered - r.sent for r in posted.requests]),
                  "server_cpu_s_posting": _cpu(cpu, server.cpu()),
                  "client_cpu_s": round(posted.client_cpu_s, 2)}
        if engine:
            caught_up = server.wait_learned(options.timeout)
            result.update(_engine_of(server.status()))
            result["engine_caught_up_s_after_last_answer"] = round(caught_up, 2)
            result["accepted_and_learned_events_per_s"] = round(
                posted.total("accepted") / (posted.seconds + caught_up))
            result["server_cpu_s_total"] = _cpu(cpu, server.cpu())
    return result


def paced(lines: Sequence[str], rate: float, folder: Path, template: Path,
          options: HttpBenchOptions, name: str = "paced") -> dict[str, Any]:
    """Batches of `paced_batch` at `rate` events/s from `clients` clients."""
    count = min(len(lines), max(int(rate * options.paced_seconds), options.paced_batch))
    requests = bodies(lines[:count], options.paced_batch)
    with running(name, folder, template, options) as server:
        posted = post(server, requests, clients=options.clients,
                      interval=options.paced_batch / rate, timeout=options.timeout)
        lag = server.status()["lag"]
        server.wait_learned(options.timeout)
        status = server.status()
    return {"batch": options.paced_batch, "clients": options.clients,
            "target_events_per_s": round(rate), **_counts(posted, count),
            "achieved_events_per_s": round(posted.total("accepted") / posted.seconds),
            "seconds": round(posted.seconds, 2),
            "latency_ms": latency_ms([r.answered - r.sent for r in posted.requests]),
            "latency_ms_from_due": latency_ms([r.answered - (r.due or r.sent)
                                               for r in posted.requests]),
            "engine_lag_at_last_answer": lag, **_engine_of(status)}


def shifted(events: Sequence[Event], now: datetime) -> tuple[list[str], list[datetime]]:
    """JSON lines and times of `events` moved a whole number of days so that the last one
    falls within the day before `now`."""
    days = math.floor((now - events[-1].occurred_at) / timedelta(days=1))
    shift = timedelta(days=days)
    lines, times = [], []
    for event in events:
        record = event.model_dump(mode="json")
        at = event.occurred_at + shift
        record["occurred_at"] = at.isoformat()
        lines.append(json.dumps(record))
        times.append(at)
    return lines, times


def event_to_send(events: Sequence[Event], folder: Path, template: Path,
                  options: HttpBenchOptions) -> dict[str, Any]:
    """Latency from the request carrying an alert's event to the receiver, at
    `delivery_rate` events/s after a fast warm-up (see the module's docstring)."""
    size = min(max(int(options.delivery_rate * options.delivery_seconds), 1),
               len(events) - 1)
    now = datetime.now(UTC)
    lines, times = shifted(events, now)
    warm, measured = len(lines) - size, lines[len(lines) - size:]
    warm_end = times[warm - 1]
    # history cut-off just before the paced window (an hour's margin for the run itself)
    max_age = (now - times[warm]) / timedelta(days=1) + 1 / 24
    wall_minus_perf = time.time() - time.perf_counter()
    receiver = Receiver()
    routes = folder / "routing.yaml"
    routes.write_text(ROUTES.format(url=receiver.url))
    env = {"SIA_WEBHOOK_SECRET": secrets.token_hex(32),
           "SIA_SERVE_DELIVER_SECONDS": str(options.deliver_every),
           "SIA_DELIVERY_MAX_AGE_DAYS": f"{max_age:.6f}"}
    try:
        with running("event-to-send", folder, template, options, env=env,
                     routes=routes) as server:
            warm_messages = _warm_up(server, receiver, lines[:warm], options)
            posted = post(server, bodies(measured, options.delivery_batch),
                          clients=options.clients,
                          interval=options.delivery_batch / options.delivery_rate,
                          timeout=options.timeout)
            server.wait_learned(options.timeout)
            receiver.quiet(2.0, 60.0)
            status = server.status()
        arrivals = receiver.arrivals[warm_messages:]
    finally:
        receiver.close()
    newest = list(itertools.accumulate(
        (max(times[warm + i:warm + i + options.delivery_batch])
         for i in range(0, size, options.delivery_batch)), max))
    traced, from_warm_up, untraced = trace(arrivals, posted, newest, warm_end)
    return {"rate_events_per_s": options.delivery_rate, "batch": options.delivery_batch,
            "clients": options.clients, "warm_up_events": warm, **_counts(posted, size),
            "achieved_events_per_s": round(posted.total("accepted") / posted.seconds, 1),
            "history_cut_off_days": round(max_age, 3),
            "deliver_every_s": options.deliver_every,
            "warm_up_messages_sent": warm_messages, "messages": len(arrivals),
            "alerts_traced": len(traced), "alerts_from_warm_up": from_warm_up,
            "alerts_untraced": untraced,
            "latency_ms_from_request_sent": latency_ms([t.arrived - t.request.sent
                                                        for t in traced]),
            "latency_ms_from_request_answered": latency_ms([t.arrived - t.request.answered
                                                            for t in traced]),
            "stages_ms": stages(traced, folder / "event-to-send" / "sia.db", wall_minus_perf),
            "delivery": (status.get("engine") or {}).get("delivery"), **_engine_of(status)}


def _warm_up(server: Server, receiver: Receiver, lines: Sequence[str],
             options: HttpBenchOptions) -> int:
    """Post the warm-up fast (one client, in order), wait until it is learned and its
    messages (if any) are sent; how many messages that was."""
    post(server, bodies(lines, 1000), clients=1, timeout=options.timeout)
    server.wait_learned(options.timeout)
    receiver.quiet(2.0, 60.0)
    return len(receiver.arrivals)


@dataclass(frozen=True, slots=True)
class Traced:
    """A received alert, the message that carried it and the request that raised it."""

    message_id: str
    arrived: float
    request: Sent


def trace(arrivals: Sequence[tuple[float, dict[str, Any]]], posted: Posted,
          newest: Sequence[datetime], warm_end: datetime) -> tuple[list[Traced], int, int]:
    """Each received alert with the request that raised it: the first request whose
    newest event is at or after the alert's time. Returns them, and how many alerts were
    dated within the warm-up (left out) or after every request (untraced)."""
    traced: list[Traced] = []
    warm_up = untraced = 0
    for arrived, message in arrivals:
        for alert in message.get("alerts", []):
            at = datetime.fromisoformat(alert["occurred_at"])
            index = bisect.bisect_left(newest, at)
            if at <= warm_end:
                warm_up += 1
            elif index >= len(posted.requests):
                untraced += 1
            else:
                traced.append(Traced(message["message_id"], arrived, posted.requests[index]))
    return traced, warm_up, untraced


def stages(traced: Sequence[Traced], store: Path, wall_minus_perf: float) -> dict[str, Any]:
    """Where the time goes, from the server's own store (read after it stopped): request
    sent -> alert stored (the earliest in its message) -> message planned (routed) ->
    message received. Server times are UTC wall clock, turned into this process's
    perf_counter with `wall_minus_perf`."""
    from sqlalchemy import create_engine, select

    from sia.delivery.tables import OutboxMessage

    engine = create_engine(f"sqlite:///{store}")
    try:
        with engine.connect() as connection:
            rows = {m: (d.timestamp() - wall_minus_perf, c.timestamp() - wall_minus_perf)
                    for m, d, c in connection.execute(select(
                        OutboxMessage.message_id, OutboxMessage.detected_at,
                        OutboxMessage.created_at))}
    finally:
        engine.dispose()
    found = [(t, rows[t.message_id]) for t in traced if t.message_id in rows]
    return {
        "request_sent_to_alert_stored": latency_ms([s - t.request.sent for t, (s, _) in found]),
        "alert_stored_to_message_planned": latency_ms([p - s for _, (s, p) in found]),
        "message_planned_to_received": latency_ms([t.arrived - p for t, (_, p) in found]),
        "alerts": len(found)}


# -- the whole run ----------------------------------------------------------------------


def code_state() -> dict[str, Any]:
    """The measured code: its folder, git commit and uncommitted files under sia/."""
    root = code_root()
    state: dict[str, Any] = {"path": str(root), "commit": None}

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                              text=True, timeout=10, check=True).stdout

    try:
        state["commit"] = git("rev-parse", "HEAD").strip()
        state["modified"] = [line[3:] for line in git("status", "--porcelain", "--",
                                                      "sia").splitlines()]
    except (OSError, subprocess.SubprocessError):
        pass
    return state


def goals(result: dict[str, Any]) -> dict[str, Any]:
    """Each goal of issue 14 with its value and whether it is met."""
    ratios = [r["http_to_engine"] for r in result["ingest"].values()]
    paced_p99 = result["paced"]["latency_ms"]["p99"]
    send_p99 = result["event_to_send"]["latency_ms_from_request_sent"]["p99"]
    return {
        "http_to_engine": {"value": min(ratios), "goal": GOALS["http_to_engine"],
                           "met": min(ratios) >= 1},
        "paced_p99_ms": {"value": paced_p99, "goal": GOALS["paced_p99_ms"],
                         "met": paced_p99 is not None and paced_p99 <= 100},
        "event_to_send_p99_ms": {"value": send_p99, "goal": GOALS["event_to_send_p99_ms"],
                                 "met": send_p99 is not None and send_p99 < 1000},
    }


def run(events: Sequence[Event], factory: Factory, options: HttpBenchOptions | None = None,
        *, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Every measurement of the module's docstring on `events`, in one run."""
    options = options or HttpBenchOptions()
    if len(events) < 2:
        raise ValueError("the HTTP bench needs at least two events")
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "events": len(events),
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": [round(v, 2) for v in os.getloadavg()]},
        "code": code_state()}
    progress("engine events/s without HTTP")
    engine = result["engine"] = engine_rate(events, factory, options.repeat)
    lines = [json.dumps(e.model_dump(mode="json")) for e in events]
    with tempfile.TemporaryDirectory(prefix="sia-http-bench-") as tmp:
        folder = Path(tmp)
        template = keys_template(folder)
        result["ingest"] = {}
        for batch in options.batches:
            progress(f"ingestion, batches of {batch}, engine learning")
            r = result["ingest"][str(batch)] = ingest(lines, batch, folder, template, options)
            r["http_to_engine"] = round(r["accepted_events_per_s"] / engine["events_per_s"], 3)
            live = r.get("live_engine_events_per_s")
            r["http_to_live_engine"] = round(r["accepted_events_per_s"] / live, 3) \
                if live else None
        if options.engine_off:
            result["ingest_engine_off"] = {}
            for batch in options.batches:
                progress(f"ingestion, batches of {batch}, engine off")
                result["ingest_engine_off"][str(batch)] = ingest(
                    lines, batch, folder, template, options, engine=False)
        rate = options.paced_share * engine["events_per_s"]
        progress(f"paced at {rate:,.0f} events/s")
        result["paced"] = paced(lines, rate, folder, template, options)
        result["paced"]["share_of_engine"] = options.paced_share
        first = result["ingest"][str(options.batches[0])]["accepted_events_per_s"]
        progress(f"paced at {options.paced_share * first:,.0f} events/s")
        result["paced_share_of_http"] = paced(lines, options.paced_share * first, folder,
                                              template, options, "paced-http")
        result["paced_share_of_http"]["share_of_http_ingest"] = options.paced_share
        progress(f"event to send at {options.delivery_rate:g} events/s")
        result["event_to_send"] = event_to_send(events, folder, template, options)
    result["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    result["goals"] = goals(result)
    return result
