"""Turn findings into alerts: a minimum score per detector and a cooldown per dedup key.

An alert's id is derived from its dedup key and the time it was seen, so the same
replay always yields the same ids, and reprocessing an event never makes a second
alert downstream (the store refuses a repeated id).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from sia.config import ConfigError, Source, config_dir, load_yaml, mapping_at
from sia.detectors.names import check_detector
from sia.findings import Finding
from sia.policy.cooldown import CooldownStore, MemoryCooldowns
from sia.policy.inhibition import Inhibitor, InhibitRule, parse_rules
from sia.policy.mutes import parse_mutes


class RecentAlert(NamedTuple):
    """What policy needs to remember of a stored alert."""

    dedup_key: str
    detector: str
    kind: str
    subject_kind: str
    subject_id: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Alert:
    """A finding that passed policy, with its deterministic id."""

    alert_id: str
    finding: Finding

    @staticmethod
    def id_for(finding: Finding) -> str:
        """sha256 of dedup key and time: stable across replays and reprocessing."""
        raw = f"{finding.dedup_key}|{finding.occurred_at.isoformat()}".encode()
        return hashlib.sha256(raw).hexdigest()[:32]


@dataclass(frozen=True)
class PolicyConfig:
    """Thresholds and cooldowns; `default` applies to detectors not named."""

    min_score: dict[str, float] = field(default_factory=dict)
    cooldown_days: dict[str, float] = field(default_factory=lambda: {"default": 30.0})
    inhibit: tuple[InhibitRule, ...] = ()
    mute: dict[str, frozenset[str]] = field(default_factory=dict)  # see sia.policy.mutes

    def min_score_for(self, detector: str) -> float:
        """Lowest score that becomes an alert."""
        return self.min_score.get(detector, self.min_score.get("default", 0.0))

    def cooldown_for(self, detector: str) -> timedelta:
        """How long the same dedup key stays quiet after an alert."""
        days = self.cooldown_days.get(detector, self.cooldown_days.get("default", 30.0))
        return timedelta(days=days)


def load_policy(path: Path | None = None, *, required: bool = False) -> PolicyConfig:
    """Read config/policy.yaml (defaults when absent), validating every value.

    `required=True` (a path the user gave, e.g. --policy-file): an absent file is a
    ConfigError naming it, not a run on defaults. By default an absent file means the
    defaults, as a published configuration without a policy does. Every detector named
    (min_score, cooldown_days, inhibit) must be registered; `default` is allowed in
    min_score and cooldown_days.
    """
    path = path or config_dir() / "policy.yaml"
    if not path.exists():
        if required:
            raise ConfigError(f"{path}: no such file")
        return PolicyConfig()
    return policy_from(load_yaml(path), source=path)


def policy_from(data: dict[str, Any], *, source: Source) -> PolicyConfig:
    """The policy of a mapping laid out as policy.yaml, validated; errors name `source`."""
    path = source
    unknown = set(data) - {"min_score", "cooldown_days", "inhibit", "mute"}
    if unknown:
        raise ConfigError(f"{path}: {sorted(unknown)[0]}: unknown key; known: cooldown_days, "
                          "inhibit, min_score, mute")
    sections: dict[str, dict[str, float]] = {}
    for key, low, high in (("min_score", 0.0, 1.0), ("cooldown_days", 0.0, 3650.0)):
        values: dict[str, Any] = mapping_at(data, key, path, "")
        for name, value in values.items():
            check_detector(name, path, f"{key}.{name}", also=("default",))
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not low <= value <= high:
                raise ConfigError(f"{path}: {key}.{name}: must be a number in [{low}, {high}], "
                                  f"got {value!r}")
        sections[key] = {str(k): float(v) for k, v in values.items()}
    return PolicyConfig(min_score=sections["min_score"],
                        cooldown_days=sections["cooldown_days"] or {"default": 30.0},
                        inhibit=parse_rules(data.get("inhibit"), path),
                        mute=parse_mutes(data.get("mute"), path))


class Policy:
    """Stateful gate from findings to alerts (state: last alert time per dedup key)."""

    def __init__(self, config: PolicyConfig | None = None,
                 cooldowns: CooldownStore | None = None) -> None:
        self.config = config or PolicyConfig()
        self.cooldowns: CooldownStore = cooldowns or MemoryCooldowns()
        self.inhibitor = Inhibitor(self.config.inhibit)
        self.suppressed: dict[str, int] = {"below_min_score": 0, "cooldown": 0,
                                           "inhibited": 0}

    def remember(self, recent: Iterable[RecentAlert]) -> None:
        """Resume cooldowns and inhibitions from the alert store after a restart."""
        for r in recent:
            cooldown = self.config.cooldown_for(r.detector)
            self.cooldowns.mark(r.dedup_key, r.occurred_at, cooldown.total_seconds())
            self.inhibitor.note(r.detector, r.kind, r.subject_kind, r.subject_id,
                                r.occurred_at)

    def reconfigure(self, config: PolicyConfig, recent: Iterable[RecentAlert]) -> None:
        """New thresholds and cooldowns, keeping the cooldowns running; new inhibition
        rules start from the recent alerts (`recent`, as the store gives them)."""
        old, self.config = self.config, config
        if config.inhibit != old.inhibit:
            self.inhibitor = Inhibitor(config.inhibit)
            for r in recent:
                self.inhibitor.note(r.detector, r.kind, r.subject_kind, r.subject_id,
                                    r.occurred_at)

    def admit(self, finding: Finding) -> Alert | None:
        """An alert for the finding, or None when policy holds it back."""
        if finding.score < self.config.min_score_for(finding.detector):
            self.suppressed["below_min_score"] += 1
            return None
        cooldown = self.config.cooldown_for(finding.detector)
        last = self.cooldowns.last(finding.dedup_key)
        if last is not None and finding.occurred_at - last < cooldown:
            self.suppressed["cooldown"] += 1
            return None
        if self.inhibitor.held_back_by(finding) is not None:
            self.suppressed["inhibited"] += 1
            return None
        # the TTL counts from now: a replay in event time keeps keys at least a cooldown
        if not self.cooldowns.mark(finding.dedup_key, finding.occurred_at,
                                   cooldown.total_seconds()):
            self.suppressed["cooldown"] += 1  # another worker alerted first
            return None
        self.inhibitor.note(finding.detector, finding.kind, finding.subject_kind,
                            finding.subject_id, finding.occurred_at)
        return Alert(Alert.id_for(finding), finding)
