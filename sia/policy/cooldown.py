"""Where cooldowns live: in this process, or in Redis so several workers share them.

A cooldown is the time of the last alert per dedup key; an entry expires with the
cooldown, so memory stays bounded in both stores.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class CooldownStore(Protocol):
    """Last alert time per dedup key."""

    def last(self, key: str) -> datetime | None:
        """When this key last alerted, if within its cooldown."""
        ...

    def mark(self, key: str, at: datetime, ttl_seconds: float) -> bool:
        """Record an alert; False if another worker recorded one at the same time or later."""
        ...


class MemoryCooldowns:
    """In-process cooldowns (the embedded default)."""

    def __init__(self) -> None:
        self._last: dict[str, datetime] = {}

    def last(self, key: str) -> datetime | None:
        """When this key last alerted."""
        return self._last.get(key)

    def mark(self, key: str, at: datetime, ttl_seconds: float) -> bool:
        """Record an alert (keeps the newest)."""
        current = self._last.get(key)
        if current is not None and current >= at:
            return False
        self._last[key] = at
        return True


class RedisCooldowns:
    """Cooldowns shared through Redis: one key per dedup key, expiring with its cooldown.

    `mark` is atomic (a small Lua script keeps the newest time), so two workers that see
    the same situation at once raise one alert between them.
    """

    _MARK = """
    local current = redis.call('GET', KEYS[1])
    if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
    """

    def __init__(self, client: Any, prefix: str = "sia:cooldown:") -> None:
        self.client = client
        self.prefix = prefix
        self._mark = client.register_script(self._MARK)

    @classmethod
    def from_url(cls, url: str) -> RedisCooldowns:
        """Connect to a Redis URL (redis://host:port/db)."""
        import redis

        return cls(redis.Redis.from_url(url))

    def last(self, key: str) -> datetime | None:
        """When this key last alerted, if its cooldown has not expired."""
        value = self.client.get(self.prefix + key)
        return datetime.fromisoformat(_iso(float(value))) if value is not None else None

    def mark(self, key: str, at: datetime, ttl_seconds: float) -> bool:
        """Record an alert atomically; False when a newer or equal one is there."""
        ttl = max(int(ttl_seconds * 1000), 1)
        return bool(self._mark(keys=[self.prefix + key], args=[f"{at.timestamp():.6f}", ttl]))


def _iso(timestamp: float) -> str:
    from datetime import UTC

    return datetime.fromtimestamp(timestamp, UTC).isoformat()
