"""The effective value of every threshold for a team or a segment, and where it comes
from: the detector's own default, the configured default, a segment override or a team
override (a team override beats a segment override, which beats the defaults)."""

from __future__ import annotations

import dataclasses
from typing import Any

from sia.detectors.base import detector_class, registered
from sia.thresholds.changes import POLICY_KEYS, Config

POLICY_HELP = {
    "min_score": ("lowest score (0 to 1) of a finding that becomes an alert", 0.0, 1.0),
    "cooldown_days": ("days the same situation about the same subject stays quiet after "
                      "an alert", 0.0, 3650.0),
}


def describe_field(f: dataclasses.Field[Any]) -> dict[str, Any]:
    """What a threshold is: its description, type, allowed range and whether it fires."""
    meta = f.metadata
    return {"description": meta.get("help", ""), "type": type(f.default).__name__,
            "range": [meta.get("low"), meta.get("high")]}


def effective(config: Config, *, team: str | None = None,
              segment: str | None = None) -> dict[str, Any]:
    """Every enabled detector's thresholds for customers of this team and segment."""
    data = config.detectors
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
            thresholds[f.name] = {"value": value, "source": source, "default": f.default,
                                  "global": f.name in cls.global_params, **describe_field(f),
                                  "overrides": _overrides(data, name, f.name)}
        out[name] = {"description": (cls.__doc__ or "").strip(), "thresholds": thresholds}
    return out


def _overrides(data: dict[str, Any], detector: str, key: str) -> dict[str, Any]:
    """Every team and segment override of one threshold: {"team UK": 0.9, ...}."""
    found: dict[str, Any] = {}
    for plural, scope in (("segments", "segment"), ("teams", "team")):
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
        help_, low, high = POLICY_HELP[key]
        out[key] = {"description": help_, "range": [low, high], "values": {
            name: {"value": values.get(name, fallback),
                   "source": "configured" if name in values else (
                       "configured default" if "default" in values else "default")}
            for name in registered()}}
    return out
