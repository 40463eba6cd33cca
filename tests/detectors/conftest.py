"""Shared fixtures of the detector tests."""

from __future__ import annotations

import pytest

from sia.events.models import Event

from .streams import synthetic_stream


@pytest.fixture(scope="session")
def stream() -> tuple[Event, ...]:
    """The synthetic stream (built once; events are immutable)."""
    return synthetic_stream()
