"""Compact snapshot encodings: what goes in comes back, values and types alike."""

from __future__ import annotations

import math
import pickle

import pytest

from sia.detectors.basket import CustomerBasket
from sia.detectors.packing import from_varints, restore_values, sparse_values, varints
from sia.detectors.rhythm import CustomerRhythm


def test_varints_round_trip_and_size() -> None:
    numbers = [0, 1, 127, 128, 16_383, 16_384, 2**40]
    data = varints(numbers)
    assert from_varints(data) == numbers
    assert len(varints([127])) == 1 and len(varints([16_383])) == 2
    with pytest.raises(ValueError):
        varints([-1])
    with pytest.raises(ValueError):
        from_varints(b"\x80")


def test_sparse_values_keep_only_what_differs_and_restore_types() -> None:
    defaults = (0, 0.0, -1e9, None, "", False)
    values = (0, -0.0, -1e9, (1, 2), "", True)
    state = sparse_values(values, defaults)
    assert state == (0b101010, -0.0, (1, 2), True)
    restored = restore_values(state, defaults)
    assert restored == list(values)
    assert math.copysign(1.0, restored[1]) == -1.0  # a negative zero is kept
    assert [type(v) for v in restored] == [type(v) for v in values]
    # an int 0 is not the float default 0.0: kept as it is
    assert restore_values(sparse_values((0, 0, -1e9, None, "", False), defaults),
                          defaults)[1].__class__ is int
    with pytest.raises(ValueError):
        restore_values((0b1,), defaults)  # mask says one value, none given


def test_rhythm_and_basket_survive_pickling() -> None:
    rhythm = CustomerRhythm()
    rhythm.add_order(19_000.0, 120.5, 3, "e1", 0.25, 0.1, 0.3, 1.0)
    rhythm.add_order(19_030.0, 80.0, 2, "e2", 0.25, 0.1, 0.3, 1.0)
    clone = pickle.loads(pickle.dumps(rhythm))
    assert all(getattr(clone, n) == getattr(rhythm, n) for n in CustomerRhythm.__slots__)
    basket = CustomerBasket()
    basket.add_order([5, 300, 20_000], 19_000, 2, 40)
    basket.add_order([300, 7], 19_010, 2, 40)
    basket.checked_at = 19_010.5
    clone_basket = pickle.loads(pickle.dumps(basket))
    assert clone_basket.__getstate__() == basket.__getstate__()
    assert list(clone_basket.counts.items()) == list(basket.counts.items())
    assert (clone_basket.regular, clone_basket.regular_since) == ([300], 19_010)
