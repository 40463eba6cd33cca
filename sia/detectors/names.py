"""Detector names in configuration files: a typo is an error naming the known ones."""

from __future__ import annotations

from collections.abc import Iterable

from sia.config import ConfigError, Source, did_you_mean
from sia.detectors.base import registered


def check_detector(name: object, path: Source, where: str, *, also: Iterable[str] = ()
                   ) -> str:
    """`name` if it is a registered detector (or one of `also`, e.g. "default"), else a
    ConfigError naming the file, the key and the known names (a typo never applies)."""
    known = [*registered(), *also]
    if isinstance(name, str) and name in known:
        return name
    raise ConfigError(f"{path}: {where}: unknown detector {name!r}{did_you_mean(name, known)} "
                      f"(known: {', '.join(sorted(known))})")
