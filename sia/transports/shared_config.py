"""Thresholds shared by every worker through Redis, and notices when they change.

A manager edits config/detectors.yaml (or policy.yaml) and runs `sia publish-config`.
The files are validated exactly as a worker loads them; only a valid configuration is
published. Published, it is one Redis key holding both texts and a version (a hash of
the texts), plus a notice on a channel for anyone listening. Workers read the key at
start (it takes precedence over their local files) and check its version on a timer;
a new version is applied to every partition they own without losing what was learned,
or refused as a whole (with the reason, in the log and in Redis) when it changes a
threshold that shapes what was learned across customers.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sia.config import ConfigError
from sia.detectors.base import Detector
from sia.detectors.config import load_detectors
from sia.policy import PolicyConfig, load_policy

DETECTORS_FILE, POLICY_FILE = "detectors.yaml", "policy.yaml"


def key(app_id: str) -> str:
    """The Redis key of an app's published configuration."""
    return f"sia:{app_id}:config"


def channel(app_id: str) -> str:
    """The Redis channel that announces a newly published version."""
    return f"sia:{app_id}:config-changed"


def status_key(app_id: str) -> str:
    """A Redis hash: worker -> what it did with the last version it saw."""
    return f"sia:{app_id}:config-status"


@dataclass(frozen=True)
class Published:
    """A configuration as published: the two files' texts and their version."""

    version: str
    detectors: str
    policy: str
    published_at: str

    def load(self) -> tuple[Callable[[], list[Detector[Any]]], PolicyConfig]:
        """A detector factory and the policy, validated like local files (ConfigError
        names the file and the key)."""
        with tempfile.TemporaryDirectory(prefix=f"sia-config-{self.version}-") as tmp:
            folder = Path(tmp)  # the loaders read files; nothing is left behind
            detectors_file, policy_file = folder / DETECTORS_FILE, folder / POLICY_FILE
            detectors_file.write_text(self.detectors)
            if self.policy:  # none published: the policy's defaults
                policy_file.write_text(self.policy)
            unlearned = load_detectors(detectors_file)  # fail now, not in the first batch
            policy = load_policy(policy_file)
        # each call: fresh detectors, as configured (copies of ones that learned nothing)
        return (lambda: copy.deepcopy(unlearned)), policy


def version_of(detectors: str, policy: str) -> str:
    """The same texts always make the same version."""
    digest = hashlib.sha256(detectors.encode() + b"\0" + policy.encode())
    return digest.hexdigest()[:12]


def publish(redis: Any, app_id: str, detectors_file: Path, policy_file: Path) -> Published:
    """Validate both files, then publish them and announce the version. A missing
    policy file publishes the policy's defaults, as a worker without one runs."""
    if not detectors_file.is_file():
        raise ConfigError(f"{detectors_file}: no such file")
    load_detectors(detectors_file)
    load_policy(policy_file)
    return publish_texts(redis, app_id, detectors_file.read_text(),
                         policy_file.read_text() if policy_file.is_file() else "")


def publish_texts(redis: Any, app_id: str, detectors: str, policy: str) -> Published:
    """Publish two validated configuration texts and announce their version."""
    published = Published(version_of(detectors, policy), detectors, policy,
                          datetime.now(UTC).isoformat(timespec="seconds"))
    redis.set(key(app_id), json.dumps(published.__dict__))
    redis.publish(channel(app_id), published.version)
    return published


def fetch(redis: Any, app_id: str) -> Published | None:
    """The configuration published for `app_id`, if any."""
    raw = redis.get(key(app_id))
    if raw is None:
        return None
    return Published(**json.loads(raw))


def current_version(redis: Any, app_id: str) -> str | None:
    """Only the version (what workers poll)."""
    published = fetch(redis, app_id)
    return published.version if published is not None else None


def report(redis: Any, app_id: str, worker: str, text: str) -> None:
    """Record what a worker did with a version, for `sia publish-config --status`."""
    redis.hset(status_key(app_id), worker, text)
