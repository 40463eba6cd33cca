"""One evaluator per detector: what counts as a correct alert, and the baseline to beat.

An evaluator sees every event and every alert of the replay as they happen (so its
baseline can be prequential and asked at the same moments), then reports against the
whole data. Modules in this package register themselves with `@evaluator`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sia.evaluation.outcomes import Outcomes
from sia.events.models import Event
from sia.policy import Alert


@dataclass(frozen=True)
class Judging:
    """What every evaluator needs after the replay."""

    outcomes: Outcomes
    horizon: float  # days
    customer_weeks_per_1k: float  # customers / 1000 * weeks of data: volume denominator
    # the threshold preview: only `alerts`, `unjudged`, `precision` (and `judged_kind`)
    # are read, so an evaluator may leave out what costs most (its matched baseline)
    precision_only: bool = False


class Evaluator:
    """Base class: override `report`; `see_event` and `see_alert` when a baseline needs them."""

    detector = ""

    def see_event(self, event: Event) -> None:
        """Called for every event, just before the engine observes it."""

    def see_alert(self, alert: Alert) -> None:
        """Called for each of this detector's alerts, when it is raised."""

    def report(self, alerts: list[Alert], judging: Judging) -> dict[str, Any]:
        """alerts, unjudged, precision, recall, median_lead_days, volume, baseline."""
        raise NotImplementedError


EVALUATORS: dict[str, Callable[[], Evaluator]] = {}


def evaluator(cls: type[Evaluator]) -> type[Evaluator]:
    """Class decorator: the evaluator of `cls.detector`."""
    EVALUATORS[cls.detector] = cls
    return cls


def evaluator_for(detector: str) -> Evaluator | None:
    """A fresh evaluator for a detector, or None when there is none yet."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    factory = EVALUATORS.get(detector)
    return factory() if factory else None
