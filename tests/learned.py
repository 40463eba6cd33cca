"""Learned state as plain values, to compare two engines' states by value (a pickle's
bytes also depend on which equal objects happen to be shared, so they can differ)."""

from __future__ import annotations

from typing import Any


def plain(value: Any, depth: int = 0) -> Any:
    """What an object holds, as plain values, for comparing learned state by value."""
    if depth > 40 or value is None or isinstance(value, str | bytes | int | float | bool):
        return value
    if isinstance(value, dict):
        return {_key(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple) or type(value).__name__ == "deque":
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(map(repr, value))
    if callable(value) and not hasattr(value, "__dict__"):
        return type(value).__name__
    fields = dict(getattr(value, "__dict__", {}))
    for cls in type(value).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(value, name):
                fields[name] = getattr(value, name)
    return (type(value).__name__, {k: plain(v, depth + 1) for k, v in fields.items()})


def _key(key: Any) -> Any:
    return key if isinstance(key, str | int | float | tuple) else repr(key)
