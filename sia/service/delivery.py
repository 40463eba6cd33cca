"""Delivering stored alerts: the notifiers, routing and feedback links from settings.

The same wiring serves `sia deliver` (a pass, or `--follow`) and the delivery loop of
`sia serve`; `DeliveryLoop` is the latter: a thread that routes, plans and sends every
`interval` seconds, and at once when new alerts are stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sia.alerts.store import AlertStore
from sia.catalog import Catalog
from sia.delivery.dispatcher import Priority, default_priority
from sia.delivery.notifiers import notifiers_from
from sia.delivery.service import Delivery
from sia.delivery.worker import DeliveryStats, LinkMaker
from sia.notifiers.base import FeedbackLinks
from sia.notifiers.tokens import feedback_links
from sia.policy.mutes import parse_mutes
from sia.settings import Settings
from sia.thresholds.versions import Versions

log = logging.getLogger("sia.delivery")
SETTING = {"slack": "SIA_SLACK_TOKEN", "email": "SIA_SMTP_HOST",
           "webhook": "SIA_WEBHOOK_SECRET", "console": "always on"}


def link_maker(settings: Settings) -> LinkMaker:
    """Signed, expiring feedback links for email messages."""
    secret = settings.feedback_secret.get_secret_value().encode()

    def links(alert_id: str, rep_id: str | None) -> FeedbackLinks:
        return feedback_links(settings.feedback_base_url, secret, alert_id, rep_id,
                              int(time.time()))

    return links


def build_delivery(store: AlertStore, catalog: Catalog, settings: Settings, *,
                   routes: Path | None = None, priority: Priority = default_priority
                   ) -> Delivery:
    """Routing tree, noise controls and every configured notifier (raises ConfigError)."""
    return Delivery(store, catalog, notifiers_from(settings), routes=routes, priority=priority,
                    links=link_maker(settings), max_attempts=settings.max_attempts)


def current_mutes(store: AlertStore) -> dict[str, frozenset[str]]:
    """The reps' mutes of the store's newest thresholds version ({} before any): for a
    delivery that runs apart from the engine (`sia deliver`), read before each pass."""
    current = Versions(store).current()
    if current is None:
        return {}
    return parse_mutes(current.config.policy.get("mute"), f"thresholds version "
                       f"{current.version}")


def waiting_notes(stats: DeliveryStats) -> list[str]:
    """One line per channel whose due messages wait for a notifier to be configured."""
    return [f"{count} due messages wait for the {channel} notifier: configure it "
            f"({SETTING.get(channel, channel)})"
            for channel, count in sorted(stats.waiting.items())]


@dataclass
class DeliveryTotals:
    """What the loop has done since it started (for /metrics)."""

    outcomes: Counter[str] = field(default_factory=Counter)  # sent, retried, dead
    steps: int = 0
    error: str | None = None


class DeliveryLoop:
    """Route, plan and send in a thread: every `interval` s, and when woken."""

    def __init__(self, delivery: Delivery, *, interval: float = 1.0,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.delivery = delivery
        self.interval = interval
        self.now = now
        self.totals = DeliveryTotals()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run in a background thread."""
        self._thread = threading.Thread(target=self._run, name="sia-delivery", daemon=True)
        self._thread.start()

    def wake(self, *_: object) -> None:
        """New alerts were stored."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the pass in hand."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                stats = self.delivery.step(self.now())
                self.totals.outcomes.update(sent=stats.sent, retried=stats.retried,
                                            dead=stats.dead)
                self.totals.steps += 1
                self.totals.error = None
                for note in waiting_notes(stats):
                    log.warning(note)
            except Exception as exc:  # keep the loop alive; /readyz and logs say why
                log.exception("delivery step failed")
                self.totals.error = f"{type(exc).__name__}: {exc}"
            self._wake.wait(self.interval)
