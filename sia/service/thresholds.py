"""Tuning thresholds: see them, change them with a reason, see the history, roll back.

The service's thresholds are versions in the store (sia/thresholds/versions.py); version
1 is the configuration files the service first started with. A change is validated like
the files are (a wrong key or value is refused naming it), recorded as a new version with
who, why and the diff, and applied to the running engine without losing what it learned
(or, in a Kafka deployment, published to every worker). A manager key scoped to a team
changes that team's thresholds only; a rep key raises its own rep's or mutes a detector
for them (sia/service/rep_thresholds.py).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sia.access.keys import Principal
from sia.config import ConfigError, config_dir, load_yaml
from sia.detectors.base import Detector
from sia.detectors.config import default_detectors_file, detectors_from
from sia.journal import Journal
from sia.policy import Policy, PolicyConfig
from sia.policy.policy import policy_from
from sia.service.pipeline import cooldowns
from sia.service.rep_thresholds import Forbidden, check_raise, scoped_to_rep, team_of_rep
from sia.thresholds.changes import Change, Config, apply
from sia.thresholds.versions import Conflict, Version, Versions

log = logging.getLogger("sia.thresholds")


@dataclass(frozen=True)
class Validated:
    """A configuration that loads: its detectors and policy."""

    config: Config
    detectors: list[Detector[Any]]
    policy: PolicyConfig


class Running(Protocol):
    """Where the thresholds run: the live engine, or the workers of a Kafka deployment."""

    def check(self, validated: Validated) -> None:
        """Raise ConfigError when these thresholds cannot be applied (changing nothing)."""
        ...

    def apply(self, validated: Validated, version: int) -> str:
        """Apply them as `version`; what became of it, in words."""
        ...


def config_from_files(detectors_file: Path | None, policy_file: Path | None) -> Config:
    """The configuration files as data (the defaults when the default files are absent)."""
    detectors_path = detectors_file or default_detectors_file()
    policy_path = policy_file or config_dir() / "policy.yaml"
    if detectors_file is not None and not detectors_file.exists():
        raise ConfigError(f"{detectors_file}: no such file")
    if policy_file is not None and not policy_file.exists():
        raise ConfigError(f"{policy_file}: no such file")
    detectors = load_yaml(detectors_path) if detectors_path.exists() else {}
    policy = load_yaml(policy_path) if policy_path.exists() else {}
    return Config(detectors, policy)


def validate(config: Config, *, source: str) -> Validated:
    """Build what a configuration describes (ConfigError names the key and why)."""
    detectors = detectors_from(config.detectors or _every_detector(), source=source)
    return Validated(config, detectors, policy_from(config.policy, source=source))


def _every_detector() -> dict[str, Any]:
    from sia.detectors.base import registered

    return {"detectors": {name: {} for name in registered()}}


class ThresholdDesk:
    """The thresholds of one service."""

    def __init__(self, versions: Versions, *, seed: Config,
                 running: Running | None = None, journal: Journal | None = None) -> None:
        self.versions = versions
        self.journal = journal  # where the CRM's reference records are (reps' teams)
        validate(seed, source="the configuration files")  # fail at start, naming the key
        self.running = running
        self._lock = threading.Lock()  # one change at a time: checked, recorded, applied
        current = versions.seed(seed, source="configuration files")
        validate(current.config, source=f"thresholds version {current.version}")

    def current(self) -> Version:
        """The version the service runs."""
        found = self.versions.current()
        assert found is not None  # seeded at start
        return found

    def pipeline(self) -> tuple[list[Detector[Any]], Policy]:
        """Detectors and policy as the current version configures them."""
        current = self.current()
        built = validate(current.config, source=f"thresholds version {current.version}")
        return built.detectors, Policy(built.policy, cooldowns=cooldowns())

    def propose(self, changes: list[Change], who: Principal) -> Validated:
        """The current configuration with these changes, validated (for a preview or an
        apply); Forbidden when the key may not make them."""
        current = self.current()
        changes = [self._checked(who, change, current.config) for change in changes]
        proposed = apply(current.config, changes)
        return validate(proposed, source="the proposed thresholds")

    def _checked(self, who: Principal, change: Change, config: Config) -> Change:
        """The change as this key may make it (a rep key's: scoped to its rep), checked."""
        if who.role == "rep":
            change = scoped_to_rep(who, change)
        else:
            allowed(who, change)
        if change.rep is not None:
            check_raise(who, change, config, self.rep_team(change.rep))
        return change

    def rep_team(self, rep_id: str) -> str | None:
        """A rep's team: as the CRM's newest record of the rep says (a rep who moved
        teams is judged by the new team's thresholds), or, where the journal holds no
        such record, as the rep's newest stored alert says."""
        if self.journal is not None:
            record = self.journal.rep_record(rep_id)
            if record is not None:
                team: str | None = record.get("team")
                return team
        return team_of_rep(self.versions.store, rep_id)

    def change(self, changes: list[Change], *, expected: int, who: Principal,
               reason: str) -> Version | None:
        """Record the changes as a new version and apply it; None when they change
        nothing. Raises ConfigError, Forbidden, Conflict."""
        proposed = self.propose(changes, who)
        return self._record(proposed, expected=expected, who=who, reason=reason,
                            kind="rep" if who.role == "rep" else "apply")

    def rollback(self, version: int, *, expected: int, who: Principal,
                 reason: str) -> Version | None:
        """A new version equal to `version` (admins and unscoped managers only)."""
        if who.role not in ("admin", "manager") or who.team is not None:
            raise Forbidden("a rollback restores every team's thresholds: it needs an admin "
                            "key or a manager key for every team")
        old = self.versions.get(version)
        if old is None:
            raise LookupError(f"no thresholds version {version}")
        restored = validate(old.config, source=f"thresholds version {version}")
        return self._record(restored, expected=expected, who=who, reason=reason,
                            kind="rollback", rollback_of=version)

    def _record(self, validated: Validated, *, expected: int, who: Principal, reason: str,
                kind: str, rollback_of: int | None = None) -> Version | None:
        if not reason.strip():
            raise ConfigError("a change needs a reason: say why, for whoever reads the "
                              "history")
        with self._lock:
            if self.current().version != expected:
                raise Conflict(f"the thresholds are at version {self.current().version}, "
                               f"not {expected}: reload them and make the change again")
            if self.running is not None:  # refused here, nothing is recorded
                self.running.check(validated)
            version = self.versions.record(validated.config, expected=expected,
                                           who=who.name, role=who.role,
                                           reason=reason.strip(), kind=kind,
                                           rollback_of=rollback_of)
            if version is None:
                return None
            outcome = "recorded"
            if self.running is not None:
                try:
                    outcome = self.running.apply(validated, version.version)
                except Exception as exc:  # checked above: this is a bug, say so
                    log.exception("thresholds version %d could not be applied",
                                  version.version)
                    outcome = f"failed: {type(exc).__name__}: {exc}"
            self.versions.note_outcome(version.version, "service", outcome)
        log.info("thresholds version %d by %s: %s", version.version, who.describe(),
                 "; ".join(f"{e['detector']}.{e['key']}" for e in version.diff))
        return self.versions.get(version.version)


def allowed(who: Principal, change: Change) -> None:
    """Raise Forbidden unless this key may make this change."""
    if who.role == "admin" or (who.role == "manager" and who.team is None):
        return
    if who.role == "manager":
        if change.team != who.team or change.rep is not None:
            scope = f"team {change.team}" if change.team else (
                f"segment {change.segment}" if change.segment else (
                    f"rep {change.rep}" if change.rep else "the defaults"))
            raise Forbidden(f"this manager key tunes team {who.team}'s thresholds, not "
                            f"{scope}")
        return
    raise Forbidden(f"a {who.role} key may not change thresholds")  # rep keys: _checked


__all__ = ["Change", "Conflict", "Forbidden", "ThresholdDesk", "Validated", "allowed",
           "config_from_files", "validate"]
