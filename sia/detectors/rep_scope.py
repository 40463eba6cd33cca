"""A rep's own thresholds: `reps:` in detectors.yaml, for the customers the rep owns.

    reps:
      R1: {drift: {lost_probability: 0.9}}

Where it applies, and why here: in the detectors, as one more scope after segment and
team (`Detector.params_for`: customers whose owner rep is R get R's values). A firing
threshold is a bar a finding must pass, read per customer at the moment of judging, so a
rep scope changes which findings come out and nothing that is learned: it is applied to
the running engine like a team override, without relearning, and a preview sees it like
any change. A rep's value is a floor on top, never a replacement: the stricter of the
rep's and the team's (or segment's) applies, so a manager who later lowers the team's
value does not lower the rep's, and one who raises it past the rep's raises it for the
rep too.

Only firing thresholds (declared with `fewer_alerts`) may be set for a rep, and only of
detectors that judge customers (`keyed_by == "customer"`); learning parameters shape
what a detector learns across customers or over time and are refused. Mutes are not
here: they hold alerts back at delivery (sia.policy.mutes).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sia.config import ConfigError, Source
from sia.detectors.base import detector_class, registered, stricter


def firing_refusal(detector: str, key: str) -> str | None:
    """Why a rep may not set this threshold for themselves, or None when they may."""
    try:
        cls = detector_class(detector)
    except KeyError as exc:
        return str(exc.args[0])
    fields = {f.name: f for f in dataclasses.fields(cls.params_type)}
    if key not in fields:
        return f"{detector}.{key}: unknown key; known: {', '.join(sorted(fields))}"
    if cls.keyed_by != "customer":
        return (f"{detector}.{key}: {detector} judges reps and teams, not a rep's "
                "customers: a rep can mute it, not raise its thresholds")
    if not fields[key].metadata.get("fewer_alerts"):
        return (f"{detector}.{key}: a learning parameter (it shapes what the detector "
                "learns, it is not a bar alerts must pass): only a manager can change it")
    return None


def check_reps(path: Source, data: dict[str, Any]) -> dict[str, dict[tuple[str, str],
                                                                     dict[str, Any]]]:
    """The `reps:` section, validated against the defaults and every team and segment
    override it may combine with; {detector: {("rep", R): values}}."""
    reps = data.get("reps") or {}
    if not isinstance(reps, dict):
        raise ConfigError(f"{path}: reps: must be a mapping of rep ids")
    defaults = data.get("detectors") or {}
    out: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for rep, per_detector in reps.items():
        if not isinstance(per_detector, dict):
            raise ConfigError(f"{path}: reps.{rep}: must be a mapping")
        for name, values in per_detector.items():
            where = f"{path}: reps.{rep}.{name}"
            if name not in registered():
                raise ConfigError(f"{where}: unknown detector")
            if not isinstance(values, dict):
                raise ConfigError(f"{where}: must be a mapping")
            for key in values:
                refusal = firing_refusal(name, key)
                if refusal:
                    raise ConfigError(f"{path}: reps.{rep}.{refusal}")
            for scope, base in _bases(data, defaults, name):
                _check_raised(where, scope, name, base, values)
            out.setdefault(name, {})[("rep", str(rep))] = dict(values)
    return out


def _bases(data: dict[str, Any], defaults: dict[str, Any],
           name: str) -> list[tuple[str, dict[str, Any]]]:
    """The values a rep's customers can have before the rep's: defaults, each segment,
    each team (a team's with each segment's is checked by the detectors' load)."""
    own = dict(defaults.get(name) or {})
    bases = [("", own)]
    for plural in ("segments", "teams"):
        for scope_name, per_detector in (data.get(plural) or {}).items():
            values = (per_detector or {}).get(name)
            if values:
                bases.append((f" with {plural}.{scope_name}.{name}", {**own, **values}))
    return bases


def _check_raised(where: str, scope: str, name: str, base: dict[str, Any],
                  values: dict[str, Any]) -> None:
    cls = detector_class(name)
    try:
        params = cls.params_type(**base)
        meta = {f.name: f.metadata for f in dataclasses.fields(params)}
        for key, value in values.items():
            try:
                cls.params_type(**{**base, key: value})
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{where}.{key}: {exc}") from None
        cls.params_type(**{**base, **{k: stricter(meta[k], getattr(params, k), v)
                                      for k, v in values.items()}})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}{scope}: {exc}") from None
