"""Delivery's tables come from the store's migrations only: routing, planning, snoozes,
feedback and holds work on a migrated store and never create a table themselves."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import MetaData

from sia.alerts.store import AlertStore
from sia.delivery.dispatcher import Dispatcher, snooze
from sia.feedback.record import record_feedback
from sia.service.holds import holds

from .conftest import T0, alert, catalog
from .test_rep_mutes import to_rep_and_manager


def test_nothing_in_delivery_creates_tables_at_run_time(store: AlertStore,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[Any] = []
    monkeypatch.setattr(MetaData, "create_all", lambda *a, **k: created.append(a))
    alerts = [alert("C1", 0), alert("C2", 1)]
    store.add(alerts)
    dispatcher = Dispatcher(store, to_rep_and_manager, catalog())
    assert dispatcher.route_pending(T0 + timedelta(minutes=5)) == 2
    dispatcher.plan(T0 + timedelta(days=2))
    hold = snooze(store, scope="customer", target="C1", who="rep R1", why="on holiday",
                  until=T0 + timedelta(days=9), now=T0 + timedelta(days=2))
    assert [h.hold_id for h in holds(store, kind="snooze", now=T0 + timedelta(days=3))] == [hold]
    record_feedback(store, alert_id=alerts[1].alert_id, verdict="useful", rep_id="R1",
                    source="console", who="rep R1", now=T0 + timedelta(days=3))
    assert created == []
