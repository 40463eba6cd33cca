"""A real server for the console tests, alerts stored for reps R1 (the `rep` key) and
R2, and a browser-like client that signs in through the forms."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from api.conftest import Server, serving  # type: ignore[import-not-found]
from api.test_live import post_all  # type: ignore[import-not-found]
from sqlalchemy import select
from sqlalchemy.orm import Session

from sia.cli.demo import DATASETS, load
from sia.delivery.tables import FeedbackRecord, Snooze
from sia.findings import Finding, Severity
from sia.policy import Alert

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Server]:
    """A fresh server on an empty data folder, a key per role."""
    with serving(tmp_path / "data") as s:
        yield s


def store_alert(server: Server, customer: str, *, rep: str = "R1", team: str = "UK",
                days: float = 0, value: float = 100.0, title: str | None = None,
                explanation: str | None = None, facts: dict[str, Any] | None = None) -> Alert:
    """An alert about `customer`, owned by `rep` of `team`, stored as the engine would."""
    finding = Finding(
        detector="drift", kind="overdue", subject_kind="customer", subject_id=customer,
        occurred_at=T0 + timedelta(days=days), score=0.8, severity=Severity("high"),
        title=title or f"{customer} is quiet",
        explanation=explanation or f"{customer} has not ordered for 41 days",
        action=f"call {customer} this week", dedup_key=f"drift:{customer}:{days}",
        evidence=("order-1", "order-2"), value=value,
        facts=facts if facts is not None else {"days_quiet": 41, "usual_gap_days": 14})
    a = Alert(Alert.id_for(finding), finding)
    server.runtime.store.add([a], owner=lambda _: (rep, team))
    return a


def verdicts(server: Server) -> list[tuple[str, str, str, str | None]]:
    """Every stored verdict: (alert, verdict, source, rep)."""
    with Session(server.runtime.store.engine) as session:
        return [(f.alert_id, f.verdict, f.source, f.rep_id) for f in
                session.scalars(select(FeedbackRecord).order_by(FeedbackRecord.id))]


def snoozed(server: Server) -> list[tuple[str, str, str | None]]:
    """Every stored snooze: (scope, target, rep)."""
    with Session(server.runtime.store.engine) as session:
        return [(s.scope, s.target, s.rep_id) for s in session.scalars(select(Snooze))]


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token a page's forms carry."""
    found = CSRF.search(page.text)
    assert found, page.text[:2000]
    return found.group(1)


def browser(server: Server, **kwargs: Any) -> httpx.Client:
    """A cookie-keeping client that does not follow redirects (tests look at them)."""
    return httpx.Client(base_url=server.url, timeout=60, **kwargs)


def sign_in(client: httpx.Client, key: str) -> httpx.Response:
    """Open the sign-in form and post a key with its token; the answer to the POST."""
    form = client.get("/console/sign-in")
    assert form.status_code == 200, form.text
    return client.post("/console/sign-in", data={"key": key, "csrf": csrf_of(form)})


CUSTOMERS = 40  # of the online-retail sample: a small journal, a quick preview


@cache
def small_retail() -> tuple[dict[str, Any], ...]:
    """The reps, the customers who ordered most, their orders and the products those
    name."""
    events = [e.model_dump(mode="json") for e in load(DATASETS[0])[0]]
    counts = Counter(e["customer_id"] for e in events if e["type"] == "order")
    chosen = {c for c, _ in counts.most_common(CUSTOMERS)}
    orders = [e for e in events if e["type"] == "order" and e["customer_id"] in chosen]
    products = {line["product_id"] for o in orders for line in o["lines"]}
    return tuple(e for e in events if e["type"] == "rep"
                 or (e["type"] == "customer" and e["customer_id"] in chosen)
                 or (e["type"] == "product" and e["product_id"] in products)
                 or (e["type"] in ("order", "return") and e.get("customer_id") in chosen))


@pytest.fixture()
def retail_server(tmp_path: Path) -> Iterator[Server]:
    """A server that has learned a small slice of the online-retail journal."""
    with serving(tmp_path / "data") as server:
        post_all(server, list(small_retail()))
        server.wait_learned()
        yield server
