"""Fixtures of the engine tests: the synthetic stream of the detector tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from sia.events.models import Event


def _streams_module() -> ModuleType:
    """tests/detectors/streams.py, loaded by path (independent of how tests are packaged)."""
    name = "_sia_tests_streams"
    if name not in sys.modules:
        path = Path(__file__).resolve().parent.parent / "detectors" / "streams.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def stream() -> tuple[Event, ...]:
    """The deterministic synthetic stream (about 2,800 events over 400 days)."""
    events: tuple[Event, ...] = _streams_module().synthetic_stream()
    return events
