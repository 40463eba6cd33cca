"""Wiring of the delivery stage: routing tree + dispatcher + notifiers + worker.

`Delivery.step(now)` is one turn of the loop a live service runs every few seconds (and
the demo runs in event time): route the alerts `now` has reached, plan what is due, send
what can go. `now` is the time of routing and sending: every noise control runs on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sia.alerts.store import AlertRecord, AlertStore
from sia.catalog import Catalog
from sia.delivery.dispatcher import Dispatcher, Priority, Router, default_priority
from sia.delivery.worker import DeliveryStats, DeliveryWorker, LinkMaker
from sia.notifiers.base import Notifier, Recipient
from sia.routing import Route, load_routes, route_alert


@dataclass(frozen=True)
class RoutedAlert:
    """A recipient with the route's settings as the dispatcher stores them."""

    recipient: Recipient
    settings: Mapping[str, Any]
    why: str


class TreeRouter:
    """Routes a stored alert through the routing tree."""

    def __init__(self, root: Route) -> None:
        self.root = root

    def __call__(self, alert: AlertRecord, catalog: Catalog) -> Sequence[RoutedAlert]:
        """Recipients of the alert, with their settings."""
        return [RoutedAlert(r.recipient, r.settings.as_stored(), r.why)
                for r in route_alert(self.root, alert.to_alert(), catalog)]


class Delivery:
    """Route, plan and send, one step at a time."""

    def __init__(self, store: AlertStore, catalog: Catalog, notifiers: Mapping[str, Notifier],
                 *, routes: Path | None = None, priority: Priority = default_priority,
                 links: LinkMaker | None = None, max_attempts: int = 8,
                 worker: DeliveryWorker | None = None, router: Router | None = None,
                 max_age: timedelta | None = None) -> None:
        """`max_age`: alerts about events older than this before `now` become history
        (default SIA_DELIVERY_MAX_AGE_DAYS; `timedelta.max`: never)."""
        self.dispatcher = Dispatcher(store, router or TreeRouter(load_routes(routes)), catalog,
                                     priority=priority, max_age=max_age)
        self.worker = worker or DeliveryWorker(store, notifiers, links=links,
                                               max_attempts=max_attempts)

    def step(self, now: datetime) -> DeliveryStats:
        """Route the alerts `now` has reached, plan what is due by `now`, send what can go."""
        routed = self.dispatcher.route_pending(now)
        self.dispatcher.plan(now)
        stats = self.worker.run_once(now)
        stats.routed, stats.history = routed, self.dispatcher.history
        return stats
