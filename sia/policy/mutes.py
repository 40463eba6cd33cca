"""A rep's mutes: `mute:` in policy.yaml, the detectors a rep hears nothing from.

    mute:
      R1: [cross_sell]

Where it applies, and why there: at delivery, per recipient. A mute is about who hears
an alert, not about whether it is true, so the detectors and the policy still make and
store the alert (its manager, the history, the evaluation and the feedback loop still
see it); the dispatcher gives that rep's route the disposition "muted" and never sends
it (sia/delivery/dispatcher.py), and a rep key's GET /v1/alerts leaves it out unless
asked for (`muted=true`). Others the alert is routed to get it as before. Like every
threshold it is part of a thresholds version, so the history shows it and a rollback
undoes it; the engine process hands each version's mutes to its dispatcher.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sia.config import ConfigError, Source
from sia.detectors.names import check_detector

Mutes = Mapping[str, frozenset[str]]  # rep id -> the detectors muted for that rep


def parse_mutes(data: Any, path: Source) -> dict[str, frozenset[str]]:
    """`mute:` as rep id -> detectors, validated (every detector registered)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: mute: must map rep ids to lists of detectors")
    out: dict[str, frozenset[str]] = {}
    for rep, detectors in data.items():
        if not isinstance(detectors, list) or not all(isinstance(d, str) for d in detectors):
            raise ConfigError(f"{path}: mute.{rep}: must be a list of detector names")
        for i, name in enumerate(detectors):
            check_detector(name, path, f"mute.{rep}[{i}]")
        if detectors:
            out[str(rep)] = frozenset(detectors)
    return out


def is_muted(mutes: Mutes, rep_id: str | None, detector: str) -> bool:
    """Whether `detector`'s alerts are muted for this rep."""
    return rep_id is not None and detector in mutes.get(rep_id, frozenset())
