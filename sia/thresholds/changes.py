"""Changes to the thresholds, as data: apply them to a configuration, and say what they
changed.

A configuration is the pair a deployment runs on: `detectors` laid out as
config/detectors.yaml (`enabled`, `detectors`, `segments`, `teams`) and `policy` as
config/policy.yaml (`min_score`, `cooldown_days`, `inhibit`, `mute`). A change names a
detector, optionally a team, a segment or a rep (none: the defaults), and the keys to set;
a key set to None removes the override, so the value is inherited again. `min_score` and
`cooldown_days` are the policy's, per detector (never per team, segment or rep). A rep's
change may also mute or unmute the detector for that rep (`mute`, kept in the policy's
`mute:`; see sia/policy/mutes.py); a rep's values live under `reps:` (see
sia/detectors/rep_scope.py).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from sia.config import ConfigError

POLICY_KEYS = ("min_score", "cooldown_days")


@dataclass(frozen=True)
class Change:
    """Set (or, with None, remove) some thresholds of one detector in one scope; for a
    rep, also mute (True) or unmute (False) the detector."""

    detector: str
    set: dict[str, Any]
    team: str | None = None
    segment: str | None = None
    rep: str | None = None
    mute: bool | None = None

    def scope(self) -> tuple[str, str | None]:
        """("team", T), ("segment", S), ("rep", R) or ("default", None)."""
        named = [(k, v) for k, v in (("team", self.team), ("segment", self.segment),
                                     ("rep", self.rep)) if v is not None]
        if len(named) > 1:
            raise ConfigError(f"{self.detector}: a change names a team, a segment or a "
                              "rep, not more than one")
        if self.mute is not None and named[:1] != [("rep", self.rep)]:
            raise ConfigError(f"{self.detector}: a mute is a rep's own: name the rep")
        return named[0] if named else ("default", None)


@dataclass(frozen=True)
class Config:
    """The detectors' and the policy's configuration, as data."""

    detectors: dict[str, Any]
    policy: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"detectors": self.detectors, "policy": self.policy}


@dataclass(frozen=True)
class Edit:
    """One value that a change set, changed or removed."""

    detector: str
    key: str
    scope: str  # default | team | segment | rep | policy
    name: str | None  # the team or segment
    before: Any
    after: Any

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"detector": self.detector, "key": self.key, "scope": self.scope,
                "name": self.name, "before": self.before, "after": self.after}

    def describe(self) -> str:
        """'drift.lost_probability (team UK): 0.8 -> 0.9'."""
        where = f" ({self.scope} {self.name})" if self.name else (
            " (policy)" if self.scope == "policy" else "")
        return f"{self.detector}.{self.key}{where}: {self.before!r} -> {self.after!r}"


def apply(config: Config, changes: list[Change]) -> Config:
    """A new configuration with the changes made (the given one is left as it is)."""
    detectors = copy.deepcopy(config.detectors)
    policy = copy.deepcopy(config.policy)
    for change in changes:
        scope, name = change.scope()
        if change.mute is not None and name is not None:
            _mute(policy, name, change.detector, change.mute)
        for key, value in change.set.items():
            if key in POLICY_KEYS:
                if scope != "default":
                    raise ConfigError(f"{change.detector}.{key}: the policy's {key} is per "
                                      f"detector, not per {scope}")
                _put(policy.setdefault(key, {}), change.detector, value)
                continue
            if scope == "default":
                section = detectors.setdefault("detectors", {}).setdefault(change.detector, {})
            else:
                owner = detectors.setdefault(f"{scope}s", {}).setdefault(name, {})
                section = owner.setdefault(change.detector, {})
            _put(section, key, value)
    return Config(_pruned(detectors), _pruned(policy))


def _mute(policy: dict[str, Any], rep: str, detector: str, mute: bool) -> None:
    mutes = policy.setdefault("mute", {})
    muted = set(mutes.get(rep) or ()) - {detector} | ({detector} if mute else set())
    if muted:
        mutes[rep] = sorted(muted)
    else:
        mutes.pop(rep, None)


def _put(section: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        section.pop(key, None)
    else:
        section[key] = value


def _pruned(data: dict[str, Any]) -> dict[str, Any]:
    """Without the empty mappings that removed overrides leave behind."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            value = _pruned(value)
            if not value:
                continue
        out[key] = value
    return out


def diff(before: Config, after: Config) -> list[Edit]:
    """Every value that differs between two configurations."""
    edits: list[Edit] = []
    old, new = before.detectors, after.detectors
    for detector in sorted(set(old.get("detectors", {})) | set(new.get("detectors", {}))):
        edits += _diff_values(old.get("detectors", {}).get(detector, {}),
                              new.get("detectors", {}).get(detector, {}), detector,
                              "default", None)
    for plural, scope in (("teams", "team"), ("segments", "segment"), ("reps", "rep")):
        names = set(old.get(plural, {})) | set(new.get(plural, {}))
        for name in sorted(names):
            a, b = old.get(plural, {}).get(name, {}), new.get(plural, {}).get(name, {})
            for detector in sorted(set(a) | set(b)):
                edits += _diff_values(a.get(detector, {}), b.get(detector, {}), detector,
                                      scope, name)
    for key in POLICY_KEYS:
        a, b = before.policy.get(key, {}), after.policy.get(key, {})
        for detector in sorted(set(a) | set(b)):
            if a.get(detector) != b.get(detector):
                edits.append(Edit(detector, key, "policy", None, a.get(detector),
                                  b.get(detector)))
    edits += _diff_mutes(before.policy.get("mute") or {}, after.policy.get("mute") or {})
    if old.get("enabled") != new.get("enabled"):
        edits.append(Edit("*", "enabled", "default", None, old.get("enabled"),
                          new.get("enabled")))
    if before.policy.get("inhibit") != after.policy.get("inhibit"):
        edits.append(Edit("*", "inhibit", "policy", None, before.policy.get("inhibit"),
                          after.policy.get("inhibit")))
    return edits


def _diff_values(a: dict[str, Any], b: dict[str, Any], detector: str, scope: str,
                 name: str | None) -> list[Edit]:
    return [Edit(detector, key, scope, name, a.get(key), b.get(key))
            for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def _diff_mutes(a: dict[str, list[str]], b: dict[str, list[str]]) -> list[Edit]:
    edits = []
    for rep in sorted(set(a) | set(b)):
        was, now = set(a.get(rep) or ()), set(b.get(rep) or ())
        edits += [Edit(detector, "muted", "rep", rep, detector in was, detector in now)
                  for detector in sorted(was ^ now)]
    return edits
