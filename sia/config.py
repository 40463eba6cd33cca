"""Locate and load SIA's YAML configuration, with errors that name the file and the key."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

Source = Path | str  # where a configuration came from: a file, or e.g. "thresholds v3"


class ConfigError(ValueError):
    """A configuration file is missing, malformed, or holds a wrong key or value."""


def config_dir() -> Path:
    """`$SIA_CONFIG_DIR`, else ./config, else the config folder beside the package."""
    env = os.environ.get("SIA_CONFIG_DIR")
    if env:
        return Path(env)
    local = Path.cwd() / "config"
    if (local / "detectors.yaml").is_file():
        return local
    return Path(__file__).resolve().parent.parent / "config"


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; empty files give {}."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def mapping_at(data: dict[str, Any], key: str, path: Source, where: str) -> dict[str, Any]:
    """data[key] as a mapping ({} when absent), else a ConfigError naming file and key."""
    value = data.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {where}{key}: must be a mapping")
    return value


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """'; did you mean 'drift'?' when a known name is close to `name`, else ''."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
