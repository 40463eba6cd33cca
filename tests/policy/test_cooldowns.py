"""Cooldowns in process and in a real Redis: the same behaviour, shared across workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sia.findings import Finding, Severity
from sia.policy import Policy, PolicyConfig
from sia.policy.cooldown import MemoryCooldowns, RedisCooldowns

T0 = datetime(2024, 3, 1, 9, tzinfo=UTC)


def finding(days: float, key: str = "drift:overdue:C1:o1") -> Finding:
    return Finding(detector="drift", kind="overdue", subject_kind="customer", subject_id="C1",
                   occurred_at=T0 + timedelta(days=days), score=0.9, severity=Severity.HIGH,
                   title="t", explanation="1 number", action="a", dedup_key=key,
                   evidence=("e1",))


@pytest.fixture(params=["memory", "redis"])
def cooldowns(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return MemoryCooldowns()
    return RedisCooldowns(request.getfixturevalue("redis_client"))


def test_cooldown_holds_the_same_key_back(cooldowns: Any) -> None:
    policy = Policy(PolicyConfig(cooldown_days={"default": 30.0}), cooldowns)
    assert policy.admit(finding(0)) is not None
    assert policy.admit(finding(29)) is None
    assert policy.admit(finding(5, key="other")) is not None
    assert policy.admit(finding(31)) is not None
    assert policy.suppressed["cooldown"] == 1


def test_mark_keeps_the_newest_and_is_atomic(cooldowns: Any) -> None:
    assert cooldowns.mark("k", T0, 60) is True
    assert cooldowns.mark("k", T0, 60) is False  # a second worker, same situation
    assert cooldowns.mark("k", T0 - timedelta(hours=1), 60) is False
    assert cooldowns.last("k") == T0
    assert cooldowns.last("missing") is None


def test_two_workers_sharing_redis_alert_once(redis_client: Any) -> None:
    first = Policy(PolicyConfig(), RedisCooldowns(redis_client))
    second = Policy(PolicyConfig(), RedisCooldowns(redis_client))
    assert first.admit(finding(0)) is not None
    assert second.admit(finding(0)) is None  # reprocessing on another worker: no 2nd alert
    assert second.admit(finding(1)) is None


def test_redis_keys_expire_with_the_cooldown(redis_client: Any) -> None:
    store = RedisCooldowns(redis_client)
    store.mark("k", T0, 0.05)
    assert redis_client.pttl("sia:cooldown:k") <= 50
