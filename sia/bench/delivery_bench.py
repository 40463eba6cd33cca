"""`sia bench --delivery`: latency from detection to send at a steady event rate.

The engine replays events paced at `rate` per second in one thread and stores its alerts
as they come; a delivery loop (route, plan, send every `poll` seconds) runs in another,
sending every alert at once (no grouping wait, quiet hours, digest or budget) through
the webhook notifier to a local HTTP receiver. Latency per message: from the moment its
alert was stored (detection) to the moment the receiver accepted it.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sia.alerts.store import AlertStore
from sia.delivery.service import Delivery
from sia.delivery.tables import OutboxMessage
from sia.delivery.worker import DeliveryWorker
from sia.detectors.base import Detector
from sia.engine.engine import Engine, replay
from sia.events.models import Event
from sia.notifiers.registry import build_notifier
from sia.policy import Alert, Policy

Factory = Callable[[], tuple[list[Detector[Any]], Policy]]
SECRET = b"bench-webhook-secret-not-for-use"

ROUTES = """receivers:
  hook: {{kind: webhook, url: "{url}"}}
team_channels: {{default: "#bench"}}
route:
  receivers: [hook]
  group_wait_minutes: 0
  digest_below: low
  daily_budget: null
  quiet_hours: null
  digest_at: "08:00"
"""


class Receiver:
    """A local webhook endpoint that notes when each message arrived and what it held."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        arrivals = self.arrivals

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrivals.append((time.perf_counter(), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """Where to post."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def quiet(self, seconds: float, timeout: float) -> None:
        """Wait until no message has arrived for `seconds` (at most `timeout`)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            last = self.arrivals[-1][0] if self.arrivals else 0.0
            if time.perf_counter() - last >= seconds:
                return
            time.sleep(0.1)

    def close(self) -> None:
        """Stop listening."""
        self.server.shutdown()
        self.server.server_close()


def delivery_latency(warm_up: Sequence[Event], events: Sequence[Event], factory: Factory, *,
                     rate: float = 200.0, poll: float = 0.05) -> dict[str, Any]:
    """p50 and p99 from detection to send while `events` arrive at `rate` a second.

    The engine first learns from `warm_up` at full speed (its alerts are not delivered:
    they are history), so the measured window sees detectors that speak.
    """
    receiver = Receiver()
    folder = Path(tempfile.mkdtemp(prefix="sia-bench-"))
    routes = folder / "routing.yaml"
    routes.write_text(ROUTES.format(url=receiver.url))
    store = AlertStore(f"sqlite:///{folder / 'bench.db'}")
    detectors, policy = factory()
    engine = Engine(detectors)
    worker = DeliveryWorker(store, {"webhook": build_notifier("webhook", {"secret": SECRET})},
                            clock=lambda: datetime.now(UTC))
    # the bench's events are history (2011): deliver them all, as if they were today's
    delivery = Delivery(store, engine.catalog, {}, routes=routes, worker=worker,
                        max_age=timedelta.max)
    done = threading.Event()
    warm_up_done = threading.Event()

    def deliver() -> None:
        while not done.is_set():
            delivery.step(datetime.now(UTC))
            time.sleep(poll)
        delivery.step(datetime.now(UTC))

    thread = threading.Thread(target=deliver, daemon=True)
    thread.start()
    started = time.perf_counter()
    pending: list[Alert] = []
    last_flush = started
    for finding in _paced(engine, warm_up, events, rate):
        if finding is None:  # warm-up over: from here alerts are delivered and timed
            warm_up_done.set()
            started = last_flush = time.perf_counter()
            continue
        alert = policy.admit(finding)
        if alert is not None and warm_up_done.is_set():
            pending.append(alert)
        now = time.perf_counter()
        if pending and now - last_flush >= poll:  # store in small batches, as a live run does
            store.add(pending)
            pending.clear()
            last_flush = now
    store.add(pending)
    elapsed = time.perf_counter() - started
    time.sleep(poll * 4)
    done.set()
    thread.join()
    with Session(store.engine) as session:
            rows = session.execute(select(OutboxMessage.sent_at, OutboxMessage.detected_at).where(
            OutboxMessage.status == "sent")).all()
    latencies = sorted((sent - detected).total_seconds() for sent, detected in rows
                       if sent is not None)
    store.close()
    receiver.close()
    return {
        "delivery_events": len(events),
        "delivery_rate_events_per_s": rate,
        "delivery_achieved_events_per_s": round(len(events) / elapsed, 1),
        "delivery_messages": len(latencies),
        "delivery_latency_ms_p50": round(1000 * statistics.median(latencies), 1)
        if latencies else None,
        "delivery_latency_ms_p99": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1)
        if latencies else None,
        "delivery_poll_s": poll,
    }


def _paced(engine: Engine, warm_up: Sequence[Event], events: Sequence[Event],
           rate: float) -> Any:
    """Findings of one replay: warm-up events at full speed, then `rate` a second.

    Yields None once between the two parts, so the caller can tell them apart.
    """
    marker: list[float] = []

    def stream() -> Any:
        yield from warm_up
        marker.append(time.perf_counter())
        for n, event in enumerate(events):
            wait = marker[0] + n / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            yield event

    announced = False
    for finding in replay(engine, stream()):
        if marker and not announced:
            announced = True
            yield None
        yield finding
    if not announced:
        yield None
