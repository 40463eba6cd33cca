"""Alert stores on the real PostgreSQL, each test in a schema of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, make_url, text

from sia.findings import Finding, Severity
from sia.policy import Alert

T0 = datetime(2024, 5, 6, 9, tzinfo=UTC)


@pytest.fixture()
def pg_url(postgres_url: str) -> Iterator[str]:
    """A URL whose connections live in a fresh schema (dropped afterwards), in a session
    time zone that is not UTC (to catch zone slips), and give up waiting for a lock after
    10 s (a regression fails instead of hanging)."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_url).update_query_dict(
        {"options": f"-csearch_path={schema} -ctimezone=America/New_York "
                    "-clock_timeout=10s"})
    yield url.render_as_string(hide_password=False)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def alert(key: str, at: datetime = T0, detector: str = "drift", customer: str = "C1") -> Alert:
    """An alert about a quiet customer, as policy makes it."""
    finding = Finding(detector=detector, kind="overdue", subject_kind="customer",
                      subject_id=customer, occurred_at=at, score=0.9, severity=Severity.HIGH,
                      title=f"{customer} is quiet", explanation="no order for 40 days",
                      action="call them", dedup_key=key, evidence=("e1",), value=120.0,
                      facts={"days_quiet": 40, "usual_gap_days": 12.5})
    return Alert(Alert.id_for(finding), finding)


def alerts(n: int, prefix: str = "k") -> list[Alert]:
    """`n` distinct alerts, a minute apart."""
    return [alert(f"{prefix}{i}", T0 + timedelta(minutes=i), customer=f"C{i % 7}")
            for i in range(n)]
