"""The effective value of every threshold for a team or a segment (and a rep), and where
it comes from: the detector's own default, the configured default, a segment override, a
team override (a team override beats a segment override, which beats the defaults) or a
rep's own value, where it is the stricter one (sia/detectors/rep_scope.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sia.detectors.base import allowed, detector_class, registered, stricter
from sia.thresholds.changes import POLICY_KEYS, Config

POLICY_HELP: dict[str, dict[str, Any]] = {
    "min_score": {"help": "Lowest score of a finding that becomes an alert: findings scored "
                          "below it are dropped. Higher: fewer, stronger alerts.",
                  "low": 0.0, "high": 1.0, "unit": "score 0..1"},
    "cooldown_days": {"help": "Days the same situation about the same customer, rep or "
                              "product stays quiet after an alert.",
                      "low": 0.0, "high": 3650.0, "unit": "days"},
}


def describe(meta: Mapping[str, Any]) -> dict[str, Any]:
    """What a threshold's metadata (see sia.detectors.base.threshold) says: description,
    allowed range ([low, high], null for no bound; inclusive unless low_open or
    high_open), the same in words, its unit and, for words, the choices."""
    out = {"description": meta.get("help", ""), "range": [meta.get("low"), meta.get("high")],
           "low_open": bool(meta.get("low_open")), "high_open": bool(meta.get("high_open")),
           "allowed": allowed(meta), "unit": meta.get("unit", ""),
           # which way gives fewer alerts (a rep may move it that way), or None: learning
           "fewer_alerts": meta.get("fewer_alerts")}
    if meta.get("choices"):
        out["choices"] = list(meta["choices"])
        out["many"] = bool(meta.get("many"))  # a comma-separated list of choices
    return out


def describe_field(f: dataclasses.Field[Any]) -> dict[str, Any]:
    """What a threshold is: its description, type, allowed range and unit."""
    return {**describe(f.metadata), "type": type(f.default).__name__}


def effective(config: Config, *, team: str | None = None, segment: str | None = None,
              rep: str | None = None) -> dict[str, Any]:
    """Every enabled detector's thresholds for customers of this team and segment (owned
    by this rep: with the rep's values where stricter, and the rep's mutes)."""
    data = config.detectors
    mine = ((data.get("reps") or {}).get(rep) or {}) if rep else {}
    muted = set((config.policy.get("mute") or {}).get(rep) or ()) if rep else set()
    enabled = data.get("enabled") or list(data.get("detectors") or registered())
    out: dict[str, Any] = {}
    for name in enabled:
        cls = detector_class(name)
        configured = (data.get("detectors") or {}).get(name) or {}
        by_segment = ((data.get("segments") or {}).get(segment) or {}).get(name) or {} \
            if segment else {}
        by_team = ((data.get("teams") or {}).get(team) or {}).get(name) or {} if team else {}
        thresholds = {}
        for f in dataclasses.fields(cls.params_type):
            value, source = f.default, "default"
            if f.name in configured:
                value, source = configured[f.name], "configured"
            if f.name in by_segment:
                value, source = by_segment[f.name], f"segment {segment}"
            if f.name in by_team:
                value, source = by_team[f.name], f"team {team}"
            own = (mine.get(name) or {}).get(f.name)
            if own is not None and stricter(f.metadata, value, own) == own != value:
                value, source = own, f"rep {rep}"
            thresholds[f.name] = {"value": value, "source": source, "default": f.default,
                                  "global": f.name in cls.global_params, **describe_field(f),
                                  "overrides": _overrides(data, name, f.name)}
        out[name] = {"description": (cls.__doc__ or "").strip(), "thresholds": thresholds}
        if rep:
            out[name]["muted"] = name in muted
    return out


def _overrides(data: dict[str, Any], detector: str, key: str) -> dict[str, Any]:
    """Every team, segment and rep override of one threshold: {"team UK": 0.9, ...}."""
    found: dict[str, Any] = {}
    for plural, scope in (("segments", "segment"), ("teams", "team"), ("reps", "rep")):
        for name, per_detector in sorted((data.get(plural) or {}).items()):
            values = (per_detector or {}).get(detector) or {}
            if key in values:
                found[f"{scope} {name}"] = values[key]
    return found


def effective_policy(config: Config) -> dict[str, Any]:
    """min_score and cooldown_days of every detector, with their sources."""
    policy = config.policy
    out: dict[str, Any] = {}
    for key in POLICY_KEYS:
        values = policy.get(key) or {}
        fallback = values.get("default", 30.0 if key == "cooldown_days" else 0.0)
        out[key] = {**describe(POLICY_HELP[key]), "type": "float", "values": {
            name: {"value": values.get(name, fallback),
                   "source": "configured" if name in values else (
                       "configured default" if "default" in values else "default")}
            for name in registered()}}
    return out
