"""Inhibition: a drift alert holds back up-sell nudges about the same customer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sia.alerts.store import AlertStore
from sia.config import ConfigError
from sia.findings import Finding, Severity
from sia.policy import InhibitRule, Policy, PolicyConfig, load_policy

T0 = datetime(2024, 3, 1, 9, tzinfo=UTC)
RULE = InhibitRule(source="drift", targets=("up_sell",), source_kinds=("overdue",),
                   for_days=60.0)


def finding(detector: str, customer: str = "C1", days: float = 0.0,
            kind: str = "overdue") -> Finding:
    at = T0 + timedelta(days=days)
    return Finding(detector=detector, kind=kind, subject_kind="customer",
                   subject_id=customer, occurred_at=at, score=0.9, severity=Severity.HIGH,
                   title="t", explanation="1 number", action="a",
                   dedup_key=f"{detector}:{kind}:{customer}:{days}", evidence=("e1",))


def test_drift_holds_back_up_sell_for_the_same_customer_within_the_window() -> None:
    policy = Policy(PolicyConfig(inhibit=(RULE,)))
    assert policy.admit(finding("drift")) is not None
    assert policy.admit(finding("up_sell", days=10)) is None  # same customer, inside 60 days
    assert policy.admit(finding("up_sell", customer="C2", days=10)) is not None  # another
    assert policy.admit(finding("cross_sell", days=10)) is not None  # not a target
    assert policy.admit(finding("up_sell", days=60)) is not None  # the window has passed
    assert policy.suppressed["inhibited"] == 1


def test_only_the_named_source_kinds_inhibit() -> None:
    policy = Policy(PolicyConfig(inhibit=(RULE,)))
    assert policy.admit(finding("drift", kind="erosion")) is not None
    assert policy.admit(finding("up_sell", days=1)) is not None


def test_a_held_back_finding_does_not_start_its_cooldown() -> None:
    policy = Policy(PolicyConfig(inhibit=(RULE,)))
    policy.admit(finding("drift"))
    held = finding("up_sell", days=5)
    assert policy.admit(held) is None
    later = Finding(**{**held.to_dict(), "severity": Severity.HIGH, "evidence": ("e1",),
                       "occurred_at": T0 + timedelta(days=61)})
    assert policy.admit(later) is not None


def test_inhibitions_resume_from_the_store(tmp_path: Path) -> None:
    first = Policy(PolicyConfig(inhibit=(RULE,)))
    store = AlertStore(f"sqlite:///{tmp_path / 'a.db'}")
    alert = first.admit(finding("drift"))
    assert alert is not None
    store.add([alert])
    restarted = Policy(PolicyConfig(inhibit=(RULE,)))
    restarted.remember(store.recent_alerts())
    store.close()
    assert restarted.admit(finding("up_sell", days=3)) is None


@pytest.mark.parametrize(("rules", "where"), [
    ("inhibit: {source: drift}", "inhibit: must be a list"),
    ("inhibit: [{source: drift}]", "inhibit[0].targets"),
    ("inhibit: [{source: drift, targets: [drift]}]", "cannot inhibit itself"),
    ("inhibit: [{source: drift, targets: [up_sell], for_days: 0}]", "inhibit[0].for_days"),
    ("inhibit: [{source: drift, targets: [up_sell], until: x}]", "inhibit[0].until"),
])
def test_bad_rules_name_the_file_and_the_rule(tmp_path: Path, rules: str, where: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(rules + "\n")
    with pytest.raises(ConfigError, match=str(path)) as caught:
        load_policy(path)
    assert where in str(caught.value)


def test_shipped_policy_inhibits_up_sell_after_drift() -> None:
    config = load_policy(Path(__file__).resolve().parents[2] / "config" / "policy.yaml")
    assert any(r.source == "drift" and "up_sell" in r.targets for r in config.inhibit)
