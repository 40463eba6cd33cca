"""Compact pickling of per-customer state: fields at their initial value are left out,
and small non-negative integers are written as varints.

Most customers never use many of the fields a detector keeps (engagement counts of a
customer who never called, a baseline not taken yet): a snapshot records which fields
differ from their initial value in one bit mask and only those values, so a restored
state is identical (same values, same types) while the common case costs a few bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any


def _same(value: object, default: object) -> bool:
    """`value` is exactly the default: same type and value (and sign of a float zero)."""
    if type(value) is not type(default) or value != default:
        return False
    if isinstance(value, float) and isinstance(default, float):
        return math.copysign(1.0, value) == math.copysign(1.0, default)
    return True


def sparse_values(values: Sequence[object], defaults: Sequence[object]) -> tuple[object, ...]:
    """(mask, the values that differ from their defaults, in order)."""
    mask = 0
    kept: list[object] = []
    for bit, (value, default) in enumerate(zip(values, defaults, strict=True)):
        if not _same(value, default):
            mask |= 1 << bit
            kept.append(value)
    return (mask, *kept)


def restore_values(state: Sequence[object], defaults: Sequence[object]) -> list[Any]:
    """Every value of a `sparse_values` tuple, defaults filled in."""
    mask = state[0]
    if not isinstance(mask, int) or mask < 0 or mask >> len(defaults):
        raise ValueError(f"bad field mask {mask!r} for {len(defaults)} fields")
    if len(state) != 1 + mask.bit_count():
        raise ValueError(f"{len(state) - 1} values for a field mask of {mask.bit_count()}")
    values = iter(state[1:])
    return [next(values) if mask >> bit & 1 else default
            for bit, default in enumerate(defaults)]


def sparse_state(obj: object, names: Sequence[str],
                 defaults: Sequence[object]) -> tuple[object, ...]:
    """`sparse_values` of the attributes `names` of `obj`."""
    return sparse_values([getattr(obj, name) for name in names], defaults)


def restore_sparse(obj: object, names: Sequence[str], defaults: Sequence[object],
                   state: Sequence[object]) -> None:
    """Set the attributes `names` of `obj` from a `sparse_state` tuple."""
    for name, value in zip(names, restore_values(state, defaults), strict=True):
        setattr(obj, name, value)


def varints(numbers: Iterable[int]) -> bytes:
    """Non-negative integers as LEB128 varints (one byte below 128, two below 16,384)."""
    out = bytearray()
    for n in numbers:
        if n < 0:
            raise ValueError(f"varints holds non-negative integers, got {n}")
        while n >= 0x80:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
    return bytes(out)


def from_varints(data: bytes) -> list[int]:
    """The integers written by `varints`."""
    numbers: list[int] = []
    n = shift = 0
    for byte in data:
        n |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
        else:
            numbers.append(n)
            n = shift = 0
    if shift:
        raise ValueError("truncated varint")
    return numbers
