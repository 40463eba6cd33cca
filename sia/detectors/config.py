"""Build detectors from config/detectors.yaml, validated on load.

Layout::

    enabled: [drift, cross_sell]        # optional; default: every detector listed below
    detectors:                          # defaults, keyword arguments of each detector
      drift: {overdue_probability: 0.95}
    segments:                           # overrides for customers of a segment
      export: {drift: {overdue_probability: 0.9}}
    teams:                              # overrides for customers owned by a team's reps
      UK North: {cross_sell: {min_confidence: 0.3}}
    reps:                               # a rep's own raises (sia/detectors/rep_scope.py)
      R1: {drift: {lost_probability: 0.9}}

Team overrides beat segment overrides, which beat the defaults; a rep's value applies
to the rep's customers where it is stricter than theirs.

A file that is absent is only fine when it is the default one (every registered detector
then runs with its defaults); a path given explicitly must exist. A configuration that
enables no detector (an empty file, `enabled:` or `enabled: []`, an `only` matching none)
is an error, not a run that finds nothing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from sia.config import (
    ConfigError,
    Source,
    config_dir,
    did_you_mean,
    load_yaml,
    mapping_at,
)
from sia.detectors.base import Detector, detector_class, registered
from sia.detectors.names import check_detector
from sia.detectors.rep_scope import check_reps

_TOP_KEYS = {"enabled", "detectors", "segments", "teams", "reps"}


def default_detectors_file() -> Path:
    """The detectors.yaml in the configuration folder."""
    return config_dir() / "detectors.yaml"


def _check_params(
    path: Source, where: str, name: str, values: dict[str, Any],
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Keys and types one by one (errors name the key), then ranges on the merged values."""
    try:
        cls = detector_class(name)
    except KeyError as exc:
        hint = did_you_mean(name, registered())
        raise ConfigError(f"{path}: {where}{name}: {exc.args[0]}{hint}") from None
    fields = {f.name: f for f in dataclasses.fields(cls.params_type)}
    for key, value in values.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{path}: {where}{name}.{key}: unknown key; known: {known}")
        expected = type(fields[key].default)
        numeric = expected is float and isinstance(value, int)
        if isinstance(value, bool) is not (expected is bool) or not (
            isinstance(value, expected) or numeric
        ):
            raise ConfigError(f"{path}: {where}{name}.{key}: must be {expected.__name__}, "
                              f"got {value!r}")
    try:
        cls.params_type(**{**(base or {}), **values})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {where}{name}{_culprit(cls, values, base)}: {exc}") from None
    return values


def _culprit(cls: type[Detector[Any]], values: dict[str, Any],
             base: dict[str, Any] | None) -> str:
    """'.key' for the first key that is wrong on its own; '' when only a combination is."""
    for key, value in values.items():
        try:
            cls.params_type(**{**(base or {}), key: value})
        except (TypeError, ValueError):
            return f".{key}"
    return ""


def _check_combinations(path: Source, defaults: dict[str, Any],
                        overrides: dict[str, dict[tuple[str, str], dict[str, Any]]]) -> None:
    """A customer can be in a segment and a team at once: every pair must be valid too."""
    for name, scoped in overrides.items():
        segments = [(k, v) for (scope, k), v in scoped.items() if scope == "segment"]
        teams = [(k, v) for (scope, k), v in scoped.items() if scope == "team"]
        for segment, seg_values in segments:
            for team, team_values in teams:
                merged = {**defaults.get(name, {}), **seg_values, **team_values}
                try:
                    detector_class(name).params_type(**merged)
                except (TypeError, ValueError) as exc:
                    raise ConfigError(
                        f"{path}: segments.{segment}.{name} with teams.{team}.{name}: {exc} "
                        "(customers of that segment owned by that team get both)") from None


def load_detectors(
    path: Path | None = None, *, only: list[str] | None = None, required: bool | None = None
) -> list[Detector[Any]]:
    """Detectors configured by the file (all registered ones with defaults when the default
    file is absent).

    `required`: whether an absent file is an error; by default it is when `path` was
    given (a typo in --config must not run on defaults), and not for the default file.
    """
    if required is None:
        required = path is not None
    path = path or default_detectors_file()
    if not path.exists() and required:
        raise ConfigError(f"{path}: no such file")
    data = load_yaml(path) if path.exists() else {"detectors": {n: {} for n in registered()}}
    return detectors_from(data, source=path, only=only)


def detectors_from(data: dict[str, Any], *, source: Source,
                   only: list[str] | None = None) -> list[Detector[Any]]:
    """Detectors configured by a mapping laid out as detectors.yaml (a file's contents,
    or a version of the thresholds), validated key by key; errors name `source`."""
    path = source
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(
            f"{path}: {sorted(unknown)[0]}: unknown top-level key; known: {sorted(_TOP_KEYS)}"
        )
    defaults = mapping_at(data, "detectors", path, "")
    for name, values in defaults.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: detectors.{name}: must be a mapping")
        _check_params(path, "detectors.", name, values)
    enabled = data.get("enabled", list(defaults))
    if "enabled" in data and enabled in (None, []):
        raise ConfigError(f"{path}: enabled: lists no detector, so SIA would find nothing; "
                          "name the detectors to run, or leave the key out to run every "
                          "one configured under detectors:")
    if not isinstance(enabled, list) or not all(isinstance(n, str) for n in enabled):
        raise ConfigError(f"{path}: enabled: must be a list of detector names")
    for i, name in enumerate(enabled):
        check_detector(name, path, f"enabled[{i}]")
    overrides: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for scope_key, scope in (("segments", "segment"), ("teams", "team")):
        for scope_name, per_detector in mapping_at(data, scope_key, path, "").items():
            where = f"{scope_key}.{scope_name}."
            if not isinstance(per_detector, dict):
                raise ConfigError(f"{path}: {where[:-1]}: must be a mapping")
            for name, values in per_detector.items():
                if not isinstance(values, dict):
                    raise ConfigError(f"{path}: {where}{name}: must be a mapping")
                shared = sorted(set(values) & detector_class(name).global_params) \
                    if name in registered() else []
                if shared:
                    raise ConfigError(
                        f"{path}: {where}{name}.{shared[0]}: shapes what the detector learns "
                        "across all customers, so it can only be set under detectors:")
                _check_params(path, where, name, values, defaults.get(name, {}))
                overrides.setdefault(name, {})[(scope, str(scope_name))] = values
    _check_combinations(path, defaults, overrides)
    for name, scoped in check_reps(path, data).items():
        overrides.setdefault(name, {}).update(scoped)
    for name in only or []:
        check_detector(name, path, "only (the detectors asked for)")
    names = [n for n in enabled if only is None or n in only]
    if not enabled:
        raise ConfigError(f"{path}: configures no detector (no enabled: and nothing under "
                          "detectors:), so SIA would find nothing")
    if not names:
        raise ConfigError(f"{path}: none of {', '.join(only or [])} is enabled here "
                          f"(enabled: {', '.join(enabled)})")
    detectors = []
    for name in names:
        try:
            cls = detector_class(name)
        except KeyError as exc:
            raise ConfigError(f"{path}: enabled: {exc.args[0]}") from None
        detector = cls(**defaults.get(name, {}))
        detector.set_overrides(overrides.get(name, {}))
        detectors.append(detector)
    return detectors
