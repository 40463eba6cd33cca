"""Contract tests generated for every registered detector (see checks.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from sia.detectors.base import Detector, registered
from sia.events.models import Event

from . import checks

NAMES = sorted(registered())


def test_builtin_detectors_are_registered() -> None:
    assert {"drift", "cross_sell"} <= set(NAMES)
    for name, cls in registered().items():
        assert cls.name == name
        assert cls.handles, f"{name} handles no event type"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("check", checks.CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_contract(name: str, check: Callable[[type[Detector[Any]], Sequence[Event]], None],
                  stream: tuple[Event, ...]) -> None:
    check(registered()[name], stream)
