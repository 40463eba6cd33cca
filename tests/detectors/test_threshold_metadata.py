"""Every threshold of every registered detector says what it means and which values it
takes (the metadata of sia.detectors.base.threshold), its default is one of them, a
value just outside a declared bound is refused naming the key, and /v1/thresholds
(`effective`) and `sia detectors` carry it."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sia.cli import app
from sia.config import ConfigError
from sia.detectors.base import Params, registered, threshold
from sia.detectors.config import detectors_from
from sia.thresholds.changes import POLICY_KEYS, Config
from sia.thresholds.effective import effective, effective_policy

FIELDS = [(name, f) for name, cls in registered().items()
          for f in dataclasses.fields(cls.params_type)]
IDS = [f"{name}.{f.name}" for name, f in FIELDS]


def numeric(f: dataclasses.Field[Any]) -> bool:
    return isinstance(f.default, int | float) and not isinstance(f.default, bool)


def inside(value: float, meta: Any) -> bool:
    low, high = meta["low"], meta["high"]
    return (low is None or (value > low if meta["low_open"] else value >= low)) and (
        high is None or (value < high if meta["high_open"] else value <= high))


def just_outside(f: dataclasses.Field[Any]) -> list[float]:
    """For each declared bound, the nearest value of the field's type it refuses."""
    meta, out = f.metadata, []
    for bound, is_open, toward in (("low", "low_open", -math.inf),
                                   ("high", "high_open", math.inf)):
        if meta[bound] is None:
            continue
        value = meta[bound]
        if isinstance(f.default, int):
            assert value == int(value), f"{f.name}: an int bounded by a fraction"
            out.append(int(value) if meta[is_open] else int(value) + (1 if toward > 0 else -1))
        else:
            out.append(float(value) if meta[is_open] else math.nextafter(value, toward))
    return out


@pytest.mark.parametrize(("name", "f"), FIELDS, ids=IDS)
def test_every_threshold_says_what_it_changes_and_what_it_takes(
        name: str, f: dataclasses.Field[Any]) -> None:
    meta = f.metadata
    assert len(meta.get("help", "").split()) >= 4, f"{name}.{f.name}: no description"
    assert "[" not in meta["help"], "the console would read it as markup"
    if numeric(f):
        assert meta["unit"], f"{name}.{f.name}: no unit"
        assert meta["low"] is not None or meta["high"] is not None, \
            f"{name}.{f.name}: no range"
        if meta["low"] is not None and meta["high"] is not None:
            assert meta["low"] < meta["high"]
    else:
        assert meta["choices"], f"{name}.{f.name}: neither a range nor choices"


@pytest.mark.parametrize(("name", "f"), FIELDS, ids=IDS)
def test_the_default_is_allowed(name: str, f: dataclasses.Field[Any]) -> None:
    if numeric(f):
        assert inside(f.default, f.metadata), f"{name}.{f.name} = {f.default}"
    elif f.metadata["many"]:
        assert {s.strip() for s in f.default.split(",")} <= set(f.metadata["choices"])
    else:
        assert f.default in f.metadata["choices"]
    registered()[name]()  # and all defaults together pass the rules across keys


@pytest.mark.parametrize(("name", "f"), FIELDS, ids=IDS)
def test_a_value_just_outside_a_bound_is_refused_naming_the_key(
        name: str, f: dataclasses.Field[Any]) -> None:
    params = registered()[name].params_type
    values: list[Any] = just_outside(f) if numeric(f) else ["no such choice"]
    if numeric(f) and isinstance(f.default, float):
        values.append(math.nan)
    for value in values:
        with pytest.raises(ValueError, match=rf"^{f.name} must be .*got {re.escape(repr(value))}"):
            params(**{f.name: value})
        with pytest.raises(ConfigError, match=re.escape(f"detectors.{name}.{f.name}: ")):
            detectors_from({"detectors": {name: {f.name: value}}}, source=Path("t.yaml"))


@pytest.mark.parametrize(("name", "f"), [(n, f) for n, f in FIELDS if numeric(f)],
                         ids=[i for i, (_, f) in zip(IDS, FIELDS, strict=True) if numeric(f)])
def test_a_closed_bound_itself_is_allowed(name: str, f: dataclasses.Field[Any]) -> None:
    """Inclusive means inclusive: the bound passes the range (it may still break a rule
    across keys, e.g. a slow half-life at the fast one's default)."""
    for bound, is_open in (("low", "low_open"), ("high", "high_open")):
        value = f.metadata[bound]
        if value is None or f.metadata[is_open]:
            continue
        try:
            registered()[name].params_type(**{f.name: type(f.default)(value)})
        except ValueError as exc:
            assert not str(exc).startswith(f"{f.name} must be in"), exc
            assert not str(exc).startswith(f"{f.name} must be at "), exc


def test_the_error_says_the_range_in_words() -> None:
    drift = registered()["drift"].params_type
    with pytest.raises(ValueError) as caught:
        drift(lost_probability=1.5)
    assert str(caught.value) == \
        "lost_probability must be in [0.5, 1) (at least 0.5 and below 1), got 1.5"
    with pytest.raises(ValueError, match=r"^min_orders must be at least 1, got 0$"):
        drift(min_orders=0)


def test_a_plugin_s_params_get_the_same_checks() -> None:
    @dataclasses.dataclass(frozen=True)
    class Plugin(Params):
        share: float = threshold(0.5, "a share", low=0, high=1, low_open=True, unit="share")
        mode: str = threshold("a", "a mode", choices=("a", "b"))

    assert Plugin(share=1).share == 1.0
    with pytest.raises(ValueError, match=r"share must be in \(0, 1\] \(above 0 and at most 1\)"):
        Plugin(share=0.0)
    with pytest.raises(ValueError, match="mode must be one of a, b, got 'c'"):
        Plugin(mode="c")


def test_effective_thresholds_carry_description_range_and_unit() -> None:
    out = effective(Config(detectors={}))
    assert set(out) == set(registered())
    for name, f in FIELDS:
        shown = out[name]["thresholds"][f.name]
        meta = f.metadata
        assert shown["description"] == meta["help"]
        assert shown["range"] == [meta["low"], meta["high"]]
        assert (shown["low_open"], shown["high_open"]) == (meta["low_open"], meta["high_open"])
        assert shown["unit"] == meta["unit"] and shown["type"] == type(f.default).__name__
        assert shown["allowed"], f"{name}.{f.name}: no allowed values in words"
        if meta["choices"]:
            assert shown["choices"] == list(meta["choices"])
    lost = out["drift"]["thresholds"]["lost_probability"]
    assert lost["range"] == [0.5, 1] and lost["high_open"] and not lost["low_open"]
    assert lost["allowed"] == "at least 0.5 and below 1"
    policy = effective_policy(Config(detectors={}))
    for key in POLICY_KEYS:
        assert policy[key]["description"] and policy[key]["unit"]
        assert None not in policy[key]["range"]


def test_sia_detectors_lists_each_threshold_with_its_description() -> None:
    result = CliRunner().invoke(app, ["detectors"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # however the console wraps
    for name, f in FIELDS:
        assert f" {f.name} = {f.default!r} " in text, f"{name}.{f.name}"
        assert " ".join(f.metadata["help"].split()) in text, f"{name}.{f.name}"
    assert "lost_probability = 0.8 (probability 0..1; at least 0.5 and below 1)" in text
    assert "horizon_days = 90.0 (days; at least 7 and at most 730; global)" in text


@pytest.mark.parametrize(("name", "f"), FIELDS, ids=IDS)
def test_every_threshold_is_firing_with_a_direction_or_learning(
        name: str, f: dataclasses.Field[Any]) -> None:
    """What a rep may raise for themselves (sia/detectors/rep_scope.py) is declared, never
    guessed: a firing threshold says which way gives fewer alerts, anything else is a
    learning parameter; whatever shapes shared learned state is learning."""
    direction, learning = f.metadata["fewer_alerts"], f.metadata["learning"]
    assert (direction in ("higher", "lower")) != bool(learning), \
        f"{name}.{f.name}: declare fewer_alerts='higher'|'lower' or learning=True"
    if f.name in registered()[name].global_params or not numeric(f):
        assert learning, f"{name}.{f.name}: shapes what is learned, so it is learning"
