"""Inhibition between detectors: one situation holds back alerts that would contradict it.

A customer currently flagged for drift should not also get an up-sell nudge. A rule
names the source (detector and, optionally, kinds) and the detectors it holds back for
the same subject, for `for_days` after the source alert (in the manner of
Alertmanager's inhibit rules, keyed on the subject instead of labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sia.config import ConfigError, Source
from sia.detectors.names import check_detector
from sia.findings import Finding


@dataclass(frozen=True)
class InhibitRule:
    """`source` alerts about a subject hold back `targets` about it for `for_days`."""

    source: str
    targets: tuple[str, ...]
    source_kinds: tuple[str, ...] = ()  # empty: any kind of the source detector
    for_days: float = 60.0

    def matches_source(self, finding: Finding) -> bool:
        """Whether the finding can hold others back."""
        return finding.detector == self.source and (
            not self.source_kinds or finding.kind in self.source_kinds)


def parse_rules(raw: Any, path: Source) -> tuple[InhibitRule, ...]:
    """Rules from the `inhibit:` list of policy.yaml, each checked with its position."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: inhibit: must be a list of rules")
    rules = []
    for i, item in enumerate(raw):
        where = f"{path}: inhibit[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be a mapping")
        unknown = set(item) - {"source", "source_kinds", "targets", "for_days"}
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key; known: for_days, "
                              "source, source_kinds, targets")
        source, targets = item.get("source"), item.get("targets")
        kinds = item.get("source_kinds", [])
        days = item.get("for_days", 60)
        if not isinstance(source, str) or not source:
            raise ConfigError(f"{where}.source: must be a detector name")
        if not isinstance(targets, list) or not targets or not all(
                isinstance(t, str) for t in targets):
            raise ConfigError(f"{where}.targets: must be a non-empty list of detector names")
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            raise ConfigError(f"{where}.source_kinds: must be a list of finding kinds")
        if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= 3650:
            raise ConfigError(f"{where}.for_days: must be a number in (0, 3650]")
        if source in targets:
            raise ConfigError(f"{where}.targets: a detector cannot inhibit itself")
        check_detector(source, path, f"inhibit[{i}].source")
        for j, target in enumerate(targets):
            check_detector(target, path, f"inhibit[{i}].targets[{j}]")
        rules.append(InhibitRule(source, tuple(targets), tuple(kinds), float(days)))
    return tuple(rules)


class Inhibitor:
    """Remembers recent source alerts per subject and answers whether a finding is held."""

    def __init__(self, rules: tuple[InhibitRule, ...]) -> None:
        self.rules = rules
        self._sources: dict[tuple[str, str, int], datetime] = {}  # (kind, id, rule) -> at
        self._horizon = timedelta(days=max((r.for_days for r in rules), default=0.0))
        self._seen_since_prune = 0

    def held_back_by(self, finding: Finding) -> InhibitRule | None:
        """The rule holding this finding back, if any."""
        for index, rule in enumerate(self.rules):
            if finding.detector not in rule.targets:
                continue
            at = self._sources.get((finding.subject_kind, finding.subject_id, index))
            if at is not None and timedelta(0) <= finding.occurred_at - at \
                    < timedelta(days=rule.for_days):
                return rule
        return None

    def note(self, detector: str, kind: str, subject_kind: str, subject_id: str,
             at: datetime) -> None:
        """An alert was raised: remember it if it is a source of any rule."""
        for index, rule in enumerate(self.rules):
            if detector == rule.source and (not rule.source_kinds or kind in rule.source_kinds):
                key = (subject_kind, subject_id, index)
                if key not in self._sources or self._sources[key] < at:
                    self._sources[key] = at
        self._seen_since_prune += 1
        if self._seen_since_prune >= 10_000:
            self._prune(at)

    def _prune(self, now: datetime) -> None:
        cutoff = now - self._horizon
        self._sources = {k: v for k, v in self._sources.items() if v >= cutoff}
        self._seen_since_prune = 0
