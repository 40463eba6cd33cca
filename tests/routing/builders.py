"""Builders of the routing tests: reps, customers, alerts, catalogs, config files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sia.catalog import Catalog
from sia.events.models import Customer, Rep
from sia.findings import Finding, Severity
from sia.policy import Alert

T0 = datetime(2024, 5, 6, 9, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config" / "routing.yaml"
DATA = Path(__file__).resolve().parent / "data"


def rep(rep_id: str, **fields: Any) -> Rep:
    return Rep(event_id=f"rep-{rep_id}", occurred_at=T0, rep_id=rep_id, **fields)


def customer(customer_id: str, **fields: Any) -> Customer:
    return Customer(event_id=f"cust-{customer_id}", occurred_at=T0, customer_id=customer_id,
                    **fields)


def alert(detector: str = "drift", subject_id: str = "12345", *, kind: str = "overdue",
          subject_kind: str = "customer", severity: str = "high",
          facts: dict[str, Any] | None = None) -> Alert:
    finding = Finding(detector=detector, kind=kind, subject_kind=subject_kind,  # type: ignore[arg-type]
                      subject_id=subject_id, occurred_at=T0, score=0.9,
                      severity=Severity(severity), title="t", explanation="e", action="a",
                      dedup_key=f"{detector}:{kind}:{subject_id}", facts=facts or {})
    return Alert(Alert.id_for(finding), finding)


def make_catalog(*records: Customer | Rep) -> Catalog:
    catalog = Catalog()
    for record in records:
        catalog.update(record)
    return catalog


def write(tmp_path: Path, text: str, name: str = "routing.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path
