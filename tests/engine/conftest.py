"""Fixtures of the engine tests: the synthetic stream of the detector tests, and the
bundled samples."""

from __future__ import annotations

import pytest

# pytest puts tests/ on sys.path (its packages have __init__.py, tests/ itself has none)
from detectors.streams import synthetic_stream  # type: ignore[import-not-found]

from sia.cli.demo import DATASETS, load
from sia.events.models import Event


@pytest.fixture(scope="session")
def stream() -> tuple[Event, ...]:
    """The deterministic synthetic stream (about 2,800 events over 400 days)."""
    events: tuple[Event, ...] = synthetic_stream()
    return events


@pytest.fixture(scope="session")
def retail() -> list[Event]:
    """The bundled online retail sample."""
    return load(DATASETS[0])[0]


@pytest.fixture(scope="session")
def crm() -> list[Event]:
    """The bundled CRM opportunities: the rep-level performance detector speaks here."""
    return load(DATASETS[2])[0]


@pytest.fixture(scope="session")
def superstore() -> list[Event]:
    """The bundled Superstore sample: segments, regions and regional teams."""
    return load(DATASETS[1])[0]
