"""Fixtures of the engine tests: the synthetic stream of the detector tests."""

from __future__ import annotations

import pytest

# pytest puts tests/ on sys.path (its packages have __init__.py, tests/ itself has none)
from detectors.streams import synthetic_stream  # type: ignore[import-not-found]

from sia.events.models import Event


@pytest.fixture(scope="session")
def stream() -> tuple[Event, ...]:
    """The deterministic synthetic stream (about 2,800 events over 400 days)."""
    events: tuple[Event, ...] = synthetic_stream()
    return events
