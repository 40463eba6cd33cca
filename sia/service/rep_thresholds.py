"""A rep tunes their own alerts: raise a firing threshold (never lower it) or mute a
detector, for the customers they own, recorded in the thresholds history like managers'
changes.

A rep key's change is scoped to its own rep (named or implied; another rep's id is
Forbidden, 403; a team or segment too). Each value must be a firing threshold of a
detector that judges customers (sia/detectors/rep_scope.py: a learning parameter is
refused, 422) and must give fewer alerts than what applies to the rep's customers now,
the defaults with their team's overrides, the team being the one the CRM's newest
record of the rep names (`ThresholdDesk.rep_team`; a lower one is refused, 422, naming the key,
the value that applies and the direction that is allowed). What runs is the stricter of
the rep's value and the team's or segment's (`Detector.params_for`), so a manager's later
change never lowers a rep below the team, and a rep never ends below it either.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sia.access.keys import Principal
from sia.alerts.store import AlertRecord, AlertStore
from sia.config import ConfigError
from sia.detectors.base import detector_class, stricter
from sia.detectors.rep_scope import firing_refusal
from sia.thresholds.changes import POLICY_KEYS, Change, Config


class Forbidden(PermissionError):
    """A key that may not make this change."""


def team_of_rep(store: AlertStore, rep_id: str) -> str | None:
    """The rep's team, as their newest stored alert says (None before any): what is
    known of a rep whose reference record the journal does not hold."""
    with Session(store.engine) as session:
        return session.scalar(select(AlertRecord.team).where(
            AlertRecord.rep_id == rep_id, AlertRecord.team.is_not(None))
            .order_by(AlertRecord.occurred_at.desc()).limit(1))


def scoped_to_rep(who: Principal, change: Change) -> Change:
    """A rep key's change, scoped to its rep (Forbidden for another scope)."""
    if change.team is not None or change.segment is not None:
        where = f"team {change.team}" if change.team else f"segment {change.segment}"
        raise Forbidden(f"{who.describe()} tunes rep {who.rep_id}'s own alerts, not "
                           f"{where}'s")
    if change.rep not in (None, who.rep_id):
        raise Forbidden(f"{who.describe()} tunes rep {who.rep_id}'s own alerts, not rep "
                           f"{change.rep}'s")
    return dataclasses.replace(change, rep=who.rep_id)


def check_raise(who: Principal, change: Change, config: Config, team: str | None) -> None:
    """ConfigError (naming the key and why) unless every value of a rep's change is a
    firing threshold moved toward fewer alerts than apply to the rep's customers."""
    assert change.rep is not None
    for key, value in change.set.items():
        where = f"reps.{change.rep}.{change.detector}.{key}"
        if key in POLICY_KEYS:
            raise ConfigError(f"{where}: the policy's {key} is per detector, not per rep "
                              "(a rep can mute the detector instead)")
        refusal = firing_refusal(change.detector, key)
        if refusal:
            raise ConfigError(f"reps.{change.rep}.{refusal} ({who.describe()})")
        if value is None:
            continue  # the rep takes back their own raise: the team's value applies
        now, meta = applying(config, change.detector, key, team)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: must be a number, got {value!r}")
        if stricter(meta, now, value) != value:
            way = meta["fewer_alerts"]
            raise ConfigError(
                f"{where}: {value!r} would give more alerts than the {now!r} that applies to "
                f"rep {change.rep}'s customers{f' (team {team})' if team else ''}; "
                f"{who.describe()} may only set it {way} (the {way} it is, the fewer alerts)")


def applying(config: Config, detector: str, key: str,
             team: str | None) -> tuple[Any, dict[str, Any]]:
    """The value of a threshold for a team's customers (defaults, configured, team), and
    its metadata."""
    data = config.detectors
    field = {f.name: f for f in dataclasses.fields(detector_class(detector).params_type)}[key]
    value = field.default
    configured = ((data.get("detectors") or {}).get(detector) or {})
    by_team = (((data.get("teams") or {}).get(team) or {}).get(detector) or {}) if team else {}
    for source in (configured, by_team):
        value = source.get(key, value)
    return value, dict(field.metadata)
