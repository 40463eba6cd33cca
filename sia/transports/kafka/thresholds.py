"""Thresholds tuned through the front door of a Kafka deployment: each new version is
published to every worker through Redis (the channel `sia publish-config` uses), and
each worker's outcome (applied, or refused with the reason) is read back from there."""

from __future__ import annotations

from typing import Any

import yaml

from sia.service.thresholds import Validated
from sia.thresholds.versions import Versions
from sia.transports import shared_config


class KafkaRunning:
    """Publishes versions to the workers; their outcomes are in Redis."""

    def __init__(self, redis: Any, app_id: str, versions: Versions) -> None:
        self.redis = redis
        self.app_id = app_id
        self.versions = versions

    def check(self, validated: Validated) -> None:
        """Each worker checks what it can take (and reports a refusal in Redis)."""

    def apply(self, validated: Validated, version: int) -> str:
        """Publish the version's configuration texts."""
        config = validated.config
        published = shared_config.publish_texts(
            self.redis, self.app_id, yaml.safe_dump(config.detectors, sort_keys=False),
            yaml.safe_dump(config.policy, sort_keys=False) if config.policy else "")
        return f"published to the workers as {published.version}"

    def outcomes(self, published: str) -> dict[str, str]:
        """What each worker did with a published version."""
        statuses = self.redis.hgetall(shared_config.status_key(self.app_id))
        out = {}
        for worker, text in statuses.items():
            worker = worker.decode() if isinstance(worker, bytes) else str(worker)
            text = text.decode() if isinstance(text, bytes) else str(text)
            if published in text:
                out[worker] = text
        return out
