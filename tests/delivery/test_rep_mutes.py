"""A rep's mute of a detector (a thresholds setting) holds that detector's alerts back
from that rep only: the alert is stored and routed, the rep's route is "muted" and never
planned into a message; the manager's route is not."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from sia.alerts.store import AlertRecord, AlertStore
from sia.catalog import Catalog
from sia.delivery.dispatcher import Dispatcher
from sia.delivery.service import RoutedAlert
from sia.delivery.tables import AlertRoute
from sia.notifiers.base import Recipient

from .conftest import T0, alert, catalog


def to_rep_and_manager(record: AlertRecord, _: Catalog) -> Sequence[RoutedAlert]:
    return [RoutedAlert(Recipient("email", "r1@example.com", "Rep R1", "R1"), {}, "owner"),
            RoutedAlert(Recipient("email", "boss@example.com", "Boss", None), {}, "manager")]


def test_a_muted_detector_is_kept_but_not_planned_for_that_rep(store: AlertStore) -> None:
    store.add([alert("C1", 0, detector="drift"), alert("C2", 1, detector="trend")])
    dispatcher = Dispatcher(store, to_rep_and_manager, catalog())
    dispatcher.mutes = {"R1": frozenset({"drift"})}
    assert dispatcher.route_pending(T0 + timedelta(minutes=5)) == 2
    dispatcher.plan(T0 + timedelta(days=2))
    with Session(store.engine) as session:
        routes = {(r.address, session.get(AlertRecord, r.alert_id).detector):
                  (r.disposition, r.message_id)  # type: ignore[union-attr]
                  for r in session.scalars(select(AlertRoute))}
    assert routes[("r1@example.com", "drift")] == ("muted", None)
    assert routes[("r1@example.com", "trend")][0] == "grouped"
    assert routes[("r1@example.com", "trend")][1] is not None
    assert routes[("boss@example.com", "drift")][1] is not None
    assert store.count(detector="drift") == 1  # stored all the same


def test_a_delivery_apart_from_the_engine_reads_the_current_mutes(store: AlertStore) -> None:
    from sia.service.delivery import current_mutes
    from sia.thresholds.changes import Config
    from sia.thresholds.versions import Versions

    assert current_mutes(store) == {}
    versions = Versions(store)
    versions.seed(Config({}), source="test")
    versions.record(Config({}, {"mute": {"R1": ["drift"]}}), expected=1, who="test rep",
                    role="rep", reason="mine", kind="rep")
    assert current_mutes(store) == {"R1": frozenset({"drift"})}
