"""A rep's mutes in the policy configuration: validated on load, asked per rep."""

from __future__ import annotations

from pathlib import Path

import pytest

from sia.config import ConfigError
from sia.policy.mutes import is_muted
from sia.policy.policy import policy_from


def test_mutes_load_per_rep_and_say_who_is_muted() -> None:
    config = policy_from({"mute": {"R1": ["drift", "trend"], "R2": []}}, source=Path("p"))
    assert config.mute == {"R1": frozenset({"drift", "trend"})}
    assert is_muted(config.mute, "R1", "drift") and not is_muted(config.mute, "R1", "margin")
    assert not is_muted(config.mute, "R2", "drift") and not is_muted(config.mute, None, "drift")
    assert policy_from({}, source=Path("p")).mute == {}


def test_a_wrong_mute_is_refused_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"mute\.R1\[0\]"):
        policy_from({"mute": {"R1": ["drfit"]}}, source=Path("p"))
    with pytest.raises(ConfigError, match=r"mute\.R1: must be a list"):
        policy_from({"mute": {"R1": "drift"}}, source=Path("p"))
