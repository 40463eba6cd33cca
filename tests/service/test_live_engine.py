"""The live engine in one process (what the engine process of `sia serve` runs): events
a detector raises on are kept as rejects and the others learned; new thresholds are taken
without relearning, and one that shapes what was learned is refused."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sia.alerts.store import AlertStore
from sia.config import ConfigError
from sia.detectors.drift import DriftDetector
from sia.events.models import parse_event
from sia.journal import Journal
from sia.service.live import LiveEngine, LiveOptions
from sia.service.pipeline import build
from sia.service.thresholds import config_from_files, validate
from sia.thresholds.changes import Change, apply

NOW = datetime.now(UTC)


def order(event_id: str, customer: str) -> Any:
    return parse_event({"type": "order", "event_id": event_id, "customer_id": customer,
                        "occurred_at": (NOW - timedelta(days=1)).isoformat(),
                        "order_id": event_id,
                        "lines": [{"product_id": "P1", "quantity": 1, "unit_price": 2.0}]})


@pytest.fixture()
def live(tmp_path: Path) -> Any:
    journal = Journal(f"sqlite:///{tmp_path / 'journal.db'}")
    store = AlertStore(f"sqlite:///{tmp_path / 'sia.db'}")
    engine = LiveEngine(journal=journal, store=store, state_path=tmp_path / "engine.snap",
                        pipeline=lambda: build(), options=LiveOptions(clock="event"))
    yield engine
    journal.close()
    store.close()


def test_an_event_a_detector_raises_on_is_a_reject_and_the_rest_is_learned(
        live: LiveEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    learn = DriftDetector.observe

    def observe(self: DriftDetector, event: Any, ctx: Any) -> Any:
        if getattr(event, "customer_id", None) == "POISON":
            raise ArithmeticError("a bug in the detector")
        return learn(self, event, ctx)

    monkeypatch.setattr(DriftDetector, "observe", observe)  # the class: rollbacks keep it
    live.journal.record([order("p1", "C1"), order("p2", "POISON"), order("p3", "C2")])
    assert live.step() == 3
    assert live.engine.observed == 2 and live.engine.rejected == 1
    (reject,) = live.journal.rejects()
    assert (reject.event_id, reject.source) == ("p2", "engine")
    assert "detector drift raised ArithmeticError: a bug in the detector" in reject.reason
    assert parse_event(reject.raw).event_id == "p2"  # kept whole


def test_new_thresholds_are_taken_without_relearning(live: LiveEngine) -> None:
    live.journal.record([order("o1", "C1")])
    live.step()
    config = config_from_files(None, None)  # what the engine runs: config/
    changed = apply(config, [Change("drift", {"lost_probability": 0.9}, team="UK")])
    built = validate(changed, source="test")
    live.reconfigure(built.detectors, built.policy)
    drift = next(d for d in live.engine.detectors if d.name == "drift")
    assert drift.overrides == {("team", "UK"): {"lost_probability": 0.9}}
    assert dataclasses.replace(drift.params, **drift.overrides[("team", "UK")]) \
        .lost_probability == 0.9
    assert live.engine.observed == 1  # what it learned is still there
    learned = apply(config, [Change("drift", {"horizon_days": 60.0})])
    refused = validate(learned, source="test")
    with pytest.raises(ConfigError, match="shapes what was learned"):
        live.reconfigure(refused.detectors, refused.policy, check_only=True)
    assert drift.params.horizon_days == 90.0
