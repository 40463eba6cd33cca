"""/metrics: Prometheus text, names prefixed `sia_`.

Request latency and ingestion outcomes are counted here as they happen; the engine's
and the delivery loop's figures are read from their own counters at each scrape (a
collector), so the core never imports prometheus_client.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client import Counter as Tally
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sia.service.engine_process import EngineUnavailable
from sia.service.ingest import RecordResult
from sia.service.runtime import Runtime

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def reason_class(reason: str | None) -> str:
    """A few stable labels for why records are refused (reasons themselves vary)."""
    text = reason or ""
    if text.startswith("not valid JSON"):
        return "json"
    if text.startswith("conflict"):
        return "conflict"
    if "ahead of the" in text:
        return "too_far_ahead"
    if "behind the stream's clock" in text:
        return "too_late"
    return "contract"


class Metrics:
    """The app's registry and the metrics it updates itself."""

    def __init__(self, runtime: Runtime) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "sia_http_request_duration_seconds", "HTTP request latency",
            ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.received = Tally("sia_events_received_total",
                              "Event records received, by outcome", ["status"],
                              registry=self.registry)
        self.rejected = Tally("sia_events_rejected_total",
                              "Event records rejected, by reason", ["reason"],
                              registry=self.registry)
        self.registry.register(_RuntimeCollector(runtime))


class _RuntimeCollector(Collector):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Any]:
        rt = self.runtime
        yield _gauge("sia_journal_lag_events", "Accepted events not yet learned",
                     rt.backlog())
        if rt.engine is None:
            return
        try:
            status = rt.engine.status(timeout=5.0)
        except EngineUnavailable:
            yield _gauge("sia_engine_up", "1 while the engine runs without error", 0.0)
            return
        yield _counter("sia_engine_events", "Events the live engine learned", status["events"])
        yield _counter("sia_engine_busy_seconds", "Seconds the live engine spent learning",
                       status["busy_seconds"])
        yield _gauge("sia_engine_events_per_second", "Events learned per second of learning",
                     status["events_per_second"] or 0.0)
        alerts = CounterMetricFamily("sia_alerts", "Alerts raised, by detector",
                                     labels=["detector"])
        for detector, count in sorted(status["alerts"].items()):
            alerts.add_metric([detector], count)
        yield alerts
        yield _counter("sia_alerts_history", "Alerts about old events kept as history",
                       status["history"])
        yield _counter("sia_engine_rejected", "Journal events the engine refused",
                       status["rejected"])
        yield _gauge("sia_engine_up", "1 while the engine runs without error",
                     0.0 if status["error"] else 1.0)
        yield _counter("sia_engine_restarts", "Times the engine process was restarted",
                       status["restarts"])
        deliveries = CounterMetricFamily("sia_deliveries", "Delivery attempts, by outcome",
                                         labels=["outcome"])
        for outcome in ("sent", "retried", "dead"):
            deliveries.add_metric([outcome], status["delivery"].get(outcome, 0))
        yield deliveries


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def count_results(app: FastAPI, results: Sequence[RecordResult]) -> None:
    """Count one request's records by outcome and reason (one increment per label: a
    request of 1,000 records is not 1,000 calls into the registry)."""
    metrics: Metrics = app.state.metrics
    outcomes = Counter(r.status for r in results)
    for status, count in outcomes.items():
        metrics.received.labels(status).inc(count)
    if outcomes["rejected"]:
        for reason, count in Counter(reason_class(r.reason) for r in results
                                     if r.status == "rejected").items():
            metrics.rejected.labels(reason).inc(count)


class RequestTimer:
    """ASGI middleware: a latency histogram by route template (never the raw path), and
    a `Server-Timing: app;dur=<ms>` header on every answer: the server's time from the
    request reaching the app to the answer's headers (a page is rendered by then; what a
    client's clock adds, network and queueing, is not in it).
    Plain ASGI rather than Starlette's `BaseHTTPMiddleware`, which runs every request
    through an extra task and memory stream."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                spent = 1000 * (time.perf_counter() - started)
                headers = list(message.get("headers", ()))
                headers.append((b"server-timing", f"app;dur={spent:.2f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = scope.get("route")
            metrics: Metrics | None = scope["app"].state.metrics if "app" in scope else None
            if metrics is not None:
                metrics.requests.labels(scope["method"], getattr(route, "path", "unmatched"),
                                        str(status)).observe(time.perf_counter() - started)
