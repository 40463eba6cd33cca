"""A store with alerts about customers of two reps, a routing tree to a real webhook."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from notifiers.servers import WEBHOOK_SECRET, WebhookReceiver  # type: ignore[import-not-found]

from sia.alerts.store import AlertStore
from sia.catalog import Catalog
from sia.events.models import Customer, Rep
from sia.findings import Finding, Severity
from sia.notifiers.registry import build_notifier
from sia.policy import Alert

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday, 09:00 in London


def catalog() -> Catalog:
    """Two reps in London, three customers."""
    c = Catalog()
    for rep in ("R1", "R2"):
        c.update(Rep(event_id=f"rep-{rep}", occurred_at=T0 - timedelta(days=30), rep_id=rep,
                     name=f"Rep {rep}", team="UK", timezone="Europe/London"))
    for customer, owner in (("C1", "R1"), ("C2", "R1"), ("C3", "R2")):
        c.update(Customer(event_id=f"cust-{customer}", occurred_at=T0 - timedelta(days=30),
                          customer_id=customer, name=f"Customer {customer}",
                          owner_rep_id=owner, segment="retail", region="UK"))
    return c


def alert(customer: str, minutes: float = 0, severity: str = "high", detector: str = "drift",
          score: float = 0.9, value: float = 100.0, key: str = "") -> Alert:
    """An alert as policy makes it."""
    at = T0 + timedelta(minutes=minutes)
    finding = Finding(detector=detector, kind="overdue", subject_kind="customer",
                      subject_id=customer, occurred_at=at, score=score,
                      severity=Severity(severity), title=f"{customer} is quiet",
                      explanation=f"no order for {30 + minutes:.0f} days",
                      action="call them", dedup_key=key or f"{detector}:{customer}:{minutes}",
                      evidence=("e1",), value=value)
    return Alert(Alert.id_for(finding), finding)


def routing_yaml(path: Path, url: str, *, budget: int = 8, quiet: str | None = None) -> Path:
    """Every alert to one webhook, with the given budget and quiet hours."""
    quiet_line = f'  quiet_hours: "{quiet}"\n' if quiet else "  quiet_hours: null\n"
    path.write_text(
        "receivers:\n"
        f"  hook: {{kind: webhook, url: \"{url}\"}}\n"
        "team_channels: {default: \"#sales\"}\n"
        "route:\n"
        "  receivers: [hook]\n"
        "  group_wait_minutes: 10\n"
        "  digest_below: medium\n"
        f"  daily_budget: {budget}\n"
        + quiet_line +
        "  digest_at: \"08:00\"\n")
    return path


@pytest.fixture()
def receiver() -> Iterator[WebhookReceiver]:
    """A real HTTP receiver that verifies SIA's signature."""
    with WebhookReceiver() as r:
        yield r


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[AlertStore]:
    """An empty SQLite alert store."""
    s = AlertStore(f"sqlite:///{tmp_path / 'sia.db'}")
    yield s
    s.close()


@pytest.fixture()
def webhook() -> Any:
    """The real webhook notifier, signing with the receiver's secret."""
    return build_notifier("webhook", {"secret": WEBHOOK_SECRET, "timeout": 2})


Factory = Callable[..., Any]
