"""A rep's own thresholds (`reps:`): firing thresholds only, checked on load, and on top of
the team's and segment's as a floor: the stricter value applies to the rep's customers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from sia.catalog import Catalog
from sia.config import ConfigError
from sia.detectors.base import stricter
from sia.detectors.config import detectors_from
from sia.events.models import Customer, Rep

WHEN = datetime(2024, 1, 1, tzinfo=UTC)


class Ctx:
    def __init__(self) -> None:
        self.catalog = Catalog()
        for rep, team in (("R1", "UK"), ("R2", "UK")):
            self.catalog.update(Rep(event_id=f"r-{rep}", occurred_at=WHEN, rep_id=rep,
                                    team=team))
        for customer, rep in (("C1", "R1"), ("C2", "R2")):
            self.catalog.update(Customer(event_id=f"c-{customer}", occurred_at=WHEN,
                                         customer_id=customer, owner_rep_id=rep))

    def scope_of(self, customer_id: str) -> tuple[str | None, str | None]:
        return self.catalog.team_of(customer_id), None


def drift(data: dict[str, object]) -> object:
    (detector,) = detectors_from({"enabled": ["drift"], **data}, source=Path("t.yaml"))
    return detector


def test_the_stricter_of_the_rep_s_and_the_team_s_value_applies() -> None:
    ctx = Ctx()
    d = drift({"teams": {"UK": {"drift": {"lost_probability": 0.85}}},
               "reps": {"R1": {"drift": {"lost_probability": 0.9}}}})
    assert d.params_for(ctx, "C1").lost_probability == 0.9  # type: ignore[attr-defined]
    assert d.params_for(ctx, "C2").lost_probability == 0.85  # type: ignore[attr-defined]
    higher_team = drift({"teams": {"UK": {"drift": {"lost_probability": 0.95}}},
                         "reps": {"R1": {"drift": {"lost_probability": 0.9}}}})
    assert higher_team.params_for(ctx, "C1").lost_probability == 0.95  # type: ignore[attr-defined]


def test_a_learning_parameter_or_a_detector_of_reps_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"reps\.R1\.drift\.gap_alpha: a learning parameter"):
        drift({"reps": {"R1": {"drift": {"gap_alpha": 0.5}}}})
    with pytest.raises(ConfigError, match=r"performance judges reps and teams"):
        detectors_from({"reps": {"R1": {"performance": {"interval": 0.95}}}},
                       source=Path("t.yaml"))
    with pytest.raises(ConfigError, match=r"reps\.R1\.drift\.lost_probability: "):
        drift({"reps": {"R1": {"drift": {"lost_probability": 1.5}}}})


def test_stricter_follows_the_declared_direction() -> None:
    assert stricter({"fewer_alerts": "higher"}, 0.8, 0.9) == 0.9
    assert stricter({"fewer_alerts": "lower"}, 6, 4) == 4
