"""The detection pipeline from configuration: detectors and the policy that gates them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sia.detectors.base import Detector
from sia.detectors.config import load_detectors
from sia.policy import Policy, load_policy
from sia.policy.cooldown import CooldownStore, RedisCooldowns
from sia.settings import get_settings


def build(config: Path | None = None, policy_file: Path | None = None,
          only: list[str] | None = None) -> tuple[list[Detector[Any]], Policy]:
    """Detectors and policy from the configuration files; raises ConfigError naming the
    file and the key."""
    detectors = load_detectors(config, only=only)
    policy = Policy(load_policy(policy_file, required=policy_file is not None),
                    cooldowns=cooldowns())
    return detectors, policy


def cooldowns() -> CooldownStore | None:
    """Redis cooldowns when SIA_REDIS_URL is set (shared by every process), else None:
    in-process."""
    url = get_settings().redis_url
    return RedisCooldowns.from_url(url) if url else None
