"""Turn findings into alerts: a minimum score per detector and a cooldown per dedup key.

An alert's id is derived from its dedup key and the time it was seen, so the same
replay always yields the same ids, and reprocessing an event never makes a second
alert downstream (the store refuses a repeated id).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sia.config import ConfigError, config_dir, load_yaml, mapping_at
from sia.findings import Finding


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

    def min_score_for(self, detector: str) -> float:
        """Lowest score that becomes an alert."""
        return self.min_score.get(detector, self.min_score.get("default", 0.0))

    def cooldown_for(self, detector: str) -> timedelta:
        """How long the same dedup key stays quiet after an alert."""
        days = self.cooldown_days.get(detector, self.cooldown_days.get("default", 30.0))
        return timedelta(days=days)


def load_policy(path: Path | None = None) -> PolicyConfig:
    """Read config/policy.yaml (defaults when absent), validating every value."""
    path = path or config_dir() / "policy.yaml"
    if not path.exists():
        return PolicyConfig()
    data = load_yaml(path)
    unknown = set(data) - {"min_score", "cooldown_days"}
    if unknown:
        raise ConfigError(f"{path}: {sorted(unknown)[0]}: unknown key; known: cooldown_days, "
                          "min_score")
    sections: dict[str, dict[str, float]] = {}
    for key, low, high in (("min_score", 0.0, 1.0), ("cooldown_days", 0.0, 3650.0)):
        values: dict[str, Any] = mapping_at(data, key, path, "")
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not low <= value <= high:
                raise ConfigError(f"{path}: {key}.{name}: must be a number in [{low}, {high}], "
                                  f"got {value!r}")
        sections[key] = {str(k): float(v) for k, v in values.items()}
    return PolicyConfig(min_score=sections["min_score"],
                        cooldown_days=sections["cooldown_days"] or {"default": 30.0})


class Policy:
    """Stateful gate from findings to alerts (state: last alert time per dedup key)."""

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config or PolicyConfig()
        self._last_alert: dict[str, datetime] = {}
        self.suppressed: dict[str, int] = {"below_min_score": 0, "cooldown": 0}

    def remember(self, last_alerts: dict[str, datetime]) -> None:
        """Resume cooldowns from the alert store after a restart."""
        for key, at in last_alerts.items():
            current = self._last_alert.get(key)
            if current is None or at > current:
                self._last_alert[key] = at

    def admit(self, finding: Finding) -> Alert | None:
        """An alert for the finding, or None when policy holds it back."""
        if finding.score < self.config.min_score_for(finding.detector):
            self.suppressed["below_min_score"] += 1
            return None
        last = self._last_alert.get(finding.dedup_key)
        if last is not None and finding.occurred_at - last < self.config.cooldown_for(
            finding.detector
        ):
            self.suppressed["cooldown"] += 1
            return None
        self._last_alert[finding.dedup_key] = finding.occurred_at
        return Alert(Alert.id_for(finding), finding)
