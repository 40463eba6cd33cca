"""Configuration (detectors.yaml, policy.yaml), the policy gate, alert ids and the alert store."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sia.config import ConfigError
from sia.detectors.base import registered
from sia.detectors.config import load_detectors
from sia.detectors.cross_sell import CrossSellDetector, CrossSellParams
from sia.detectors.drift import DriftDetector, DriftParams
from sia.engine.engine import Engine
from sia.events.models import Customer, Order, OrderLine, Rep
from sia.findings import Finding, Severity
from sia.policy import Alert, Policy, PolicyConfig, RecentAlert, load_policy

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2024, 5, 6, 9, tzinfo=UTC)


def write(tmp_path: Path, text: str, name: str = "detectors.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path, *fragments: str) -> re.Pattern[str]:
    """A pattern requiring the file path and every fragment, in this order."""
    return re.compile(".*".join(re.escape(s) for s in (str(path), *fragments)), re.DOTALL)


# detectors.yaml


def test_no_file_gives_every_registered_detector_with_defaults(tmp_path: Path) -> None:
    detectors = load_detectors(tmp_path / "missing.yaml", required=False)  # as the default
    assert [d.name for d in detectors] == list(registered())
    for d in detectors:
        assert d.params == d.params_type()
        assert d.overrides == {}


def test_defaults_apply_to_keys_not_given(tmp_path: Path) -> None:
    path = write(tmp_path, "detectors:\n  drift:\n    min_overdue_days: 30\n  cross_sell: {}\n")
    drift, cross_sell = load_detectors(path)
    assert isinstance(drift, DriftDetector) and isinstance(cross_sell, CrossSellDetector)
    assert drift.params == dataclasses.replace(DriftParams(), min_overdue_days=30.0)
    assert isinstance(drift.params.min_overdue_days, float)  # YAML int accepted for a float
    assert cross_sell.params == CrossSellParams()


def test_empty_file_is_an_error_not_a_run_without_detectors(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    with pytest.raises(ConfigError, match=config_error(path, "configures no detector")):
        load_detectors(path)


def test_misspelt_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "detectors:\n  drift:\n    min_overdue_dayz: 30\n")
    with pytest.raises(ConfigError, match=config_error(path, "detectors.drift.min_overdue_dayz",
                                                       "unknown key", "min_overdue_days")):
        load_detectors(path)


@pytest.mark.parametrize(("key", "value", "why"), [
    ("lost_probability", "2", "lost_probability must be in"),
    ("lost_probability", "high", "must be float"),
    ("lost_probability", "'0.9'", "must be float"),  # a quoted number is a string
    ("min_orders", "2.5", "must be int"),
    ("min_orders", "true", "must be int"),
    ("value_drop", "0", "value_drop must be in (0, 1)"),
])
def test_wrong_value_names_file_and_key(tmp_path: Path, key: str, value: str, why: str) -> None:
    path = write(tmp_path, f"detectors:\n  drift:\n    {key}: {value}\n")
    with pytest.raises(ConfigError, match=config_error(path, f"detectors.drift.{key}", why)):
        load_detectors(path)


def test_unknown_detector_names(tmp_path: Path) -> None:
    path = write(tmp_path, "detectors:\n  drfit: {}\n")
    with pytest.raises(ConfigError, match=config_error(path, "detectors.drfit",
                                                       "unknown detector", "drift")):
        load_detectors(path)
    path = write(tmp_path, "enabled: [drift, upsell]\ndetectors:\n  drift: {}\n")
    with pytest.raises(ConfigError, match=config_error(path, "enabled", "upsell")):
        load_detectors(path)
    path = write(tmp_path, "detectors: {drift: {}}\nteams:\n  North:\n    drfit: {}\n")
    with pytest.raises(ConfigError, match=config_error(path, "teams.North.drfit")):
        load_detectors(path)


@pytest.mark.parametrize(("text", "where"), [
    ("detector:\n  drift: {}\n", "detector: unknown top-level key"),
    ("detectors:\n  drift: 3\n", "detectors.drift: must be a mapping"),
    ("detectors: [drift]\n", "detectors: must be a mapping"),
    ("enabled: drift\n", "enabled: must be a list"),
    ("teams:\n  North: [drift]\n", "teams.North: must be a mapping"),
    ("segments:\n  export:\n    drift: 0.9\n", "segments.export.drift: must be a mapping"),
    ("detectors: {drift: {}}\nsegments:\n  export:\n    drift: {min_orders: 0}\n",
     "segments.export.drift.min_orders"),
    ("- drift\n", "top level must be a mapping"),
    ("detectors: {drift: {min_orders: [}\n", "not valid YAML"),
])
def test_malformed_files_name_file_and_place(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=config_error(path, where)):
        load_detectors(path)


def test_global_params_cannot_be_overridden_per_team(tmp_path: Path) -> None:
    path = write(tmp_path, "detectors: {cross_sell: {}}\n"
                           "teams:\n  North:\n    cross_sell: {half_life_days: 30}\n")
    with pytest.raises(ConfigError, match=config_error(
            path, "teams.North.cross_sell.half_life_days", "only be set under detectors")):
        load_detectors(path)


def test_enabled_subset_and_only(tmp_path: Path) -> None:
    path = write(tmp_path, "enabled: [cross_sell]\n"
                           "detectors: {drift: {min_orders: 4}, cross_sell: {min_orders: 5}}\n")
    (only,) = load_detectors(path)
    assert only.name == "cross_sell" and only.params.min_orders == 5
    path = write(tmp_path, "enabled: [cross_sell, drift]\n"
                           "detectors: {drift: {min_orders: 4}}\n")
    assert [d.name for d in load_detectors(path)] == ["cross_sell", "drift"]
    (drift,) = load_detectors(path, only=["drift"])
    assert drift.name == "drift" and drift.params.min_orders == 4
    with pytest.raises(ConfigError, match=config_error(path, "only", "unknown detector")):
        load_detectors(path, only=["nothing"])
    with pytest.raises(ConfigError, match=config_error(path, "none of up_sell is enabled")):
        load_detectors(path, only=["up_sell"])


OVERRIDES = """\
detectors:
  drift: {min_overdue_days: 25}
segments:
  export:
    drift: {lost_probability: 0.9, min_overdue_days: 30}
teams:
  North:
    drift: {lost_probability: 0.7}
"""


def test_team_override_beats_segment_override_which_beats_defaults(tmp_path: Path) -> None:
    (drift,) = load_detectors(write(tmp_path, OVERRIDES))
    engine = Engine([drift])
    for event in (
        Rep(event_id="r1", occurred_at=T0, rep_id="R1", team="North"),
        Rep(event_id="r2", occurred_at=T0, rep_id="R2", team="South"),
        Customer(event_id="c1", occurred_at=T0, customer_id="X", segment="export",
                 owner_rep_id="R1"),
        Customer(event_id="c2", occurred_at=T0, customer_id="Y", segment="export",
                 owner_rep_id="R2"),
        Customer(event_id="c3", occurred_at=T0, customer_id="Z", segment="smb",
                 owner_rep_id="R1"),
    ):
        engine.observe(event)

    def knobs(customer: str) -> tuple[float, float]:
        p = drift.params_for(engine, customer)
        assert isinstance(p, DriftParams)
        return p.lost_probability, p.min_overdue_days

    default = DriftParams().lost_probability
    assert knobs("X") == (0.7, 30.0)  # team North beats segment export; segment's other key
    assert knobs("Y") == (0.9, 30.0)  # segment export (team South has no override)
    assert knobs("Z") == (0.7, 25.0)  # team North over the file's defaults
    assert knobs("nobody") == (default, 25.0)
    assert drift.params.lost_probability == default  # defaults untouched
    # a customer moving to another rep moves to that rep's team's thresholds
    engine.observe(Customer(event_id="c4", occurred_at=T0 + timedelta(days=1), customer_id="X",
                            segment="export", owner_rep_id="R2"))
    assert knobs("X") == (0.9, 30.0)


def test_valid_combination_of_related_keys_is_accepted(tmp_path: Path) -> None:
    assert DriftParams(baseline_orders=4, recent_orders=2).baseline_orders == 4
    path = write(tmp_path, "detectors:\n  drift: {baseline_orders: 4, recent_orders: 2}\n")
    (drift,) = load_detectors(path)
    assert (drift.params.baseline_orders, drift.params.recent_orders) == (4, 2)


def test_segment_and_team_overrides_that_clash_are_refused_at_load(tmp_path: Path) -> None:
    path = write(tmp_path, "detectors: {drift: {}}\n"
                           "segments:\n  S: {drift: {recent_orders: 10}}\n"
                           "teams:\n  T: {drift: {baseline_orders: 8}}\n")
    try:
        detectors = load_detectors(path)
    except ConfigError:
        return  # refusing the clash when loading is the fix we want
    engine = Engine(detectors)
    engine.observe(Rep(event_id="r", occurred_at=T0, rep_id="R", team="T"))
    engine.observe(Customer(event_id="c", occurred_at=T0, customer_id="C", segment="S",
                            owner_rep_id="R"))
    engine.observe(Order(event_id="o", occurred_at=T0, customer_id="C", order_id="SO",
                         lines=[OrderLine(product_id="A", quantity=1, unit_price=10)]))


def test_shipped_detectors_yaml_loads() -> None:
    path = REPO / "config" / "detectors.yaml"
    if not path.is_file():
        pytest.skip(f"{path} is not in the repository yet")
    detectors = load_detectors(path)
    assert {d.name for d in detectors} <= set(registered())
    assert detectors, "the shipped configuration enables no detector"
    for d in detectors:
        assert isinstance(d.params, d.params_type)


def test_shipped_policy_yaml_loads() -> None:
    path = REPO / "config" / "policy.yaml"
    if not path.is_file():
        pytest.skip(f"{path} is not in the repository yet")
    config = load_policy(path)
    for value in config.min_score.values():
        assert 0.0 <= value <= 1.0
    assert config.cooldown_for("no-such-detector") >= timedelta(0)


# policy.yaml


def test_load_policy_defaults_and_values(tmp_path: Path) -> None:
    assert load_policy(tmp_path / "absent.yaml") == PolicyConfig()
    path = write(tmp_path, "min_score: {default: 0.1, drift: 0.5}\n"
                           "cooldown_days: {cross_sell: 90}\n", "policy.yaml")
    config = load_policy(path)
    assert config.min_score_for("drift") == 0.5
    assert config.min_score_for("cross_sell") == 0.1
    assert config.cooldown_for("cross_sell") == timedelta(days=90)
    assert config.cooldown_for("drift") == timedelta(days=30)  # no default given: 30 days
    path = write(tmp_path, "min_score: {}\ncooldown_days: {}\n", "policy.yaml")
    assert load_policy(path).cooldown_for("drift") == timedelta(days=30)


@pytest.mark.parametrize(("text", "where"), [
    ("min_scores: {drift: 0.5}\n", "min_scores: unknown key"),
    ("min_score: {drift: 1.5}\n", "min_score.drift: must be a number in [0.0, 1.0]"),
    ("min_score: {drift: -0.1}\n", "min_score.drift"),
    ("min_score: {drift: high}\n", "min_score.drift"),
    ("min_score: {drift: true}\n", "min_score.drift"),
    ("cooldown_days: {default: 4000}\n", "cooldown_days.default"),
    ("cooldown_days: [30]\n", "cooldown_days: must be a mapping"),
])
def test_load_policy_refuses_wrong_values(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, text, "policy.yaml")
    with pytest.raises(ConfigError, match=config_error(path, where)):
        load_policy(path)


# the policy gate and alert ids


def finding(key: str = "drift:overdue:C1:o1", at: datetime = T0, score: float = 0.8,
            detector: str = "drift") -> Finding:
    return Finding(detector=detector, kind="overdue", subject_kind="customer",
                   subject_id="C1", occurred_at=at, score=score, severity=Severity.MEDIUM,
                   title="C1 is quiet", explanation="no order for 30 days", action="call",
                   dedup_key=key, evidence=("o1",))


def test_policy_min_score() -> None:
    policy = Policy(PolicyConfig(min_score={"default": 0.3, "cross_sell": 0.6}))
    assert policy.admit(finding(score=0.29)) is None
    assert policy.admit(finding(key="k2", score=0.3)) is not None  # the minimum is inclusive
    assert policy.admit(finding(key="k3", score=0.5, detector="cross_sell")) is None
    assert policy.admit(finding(key="k4", score=0.6, detector="cross_sell")) is not None
    assert policy.suppressed == {"below_min_score": 2, "cooldown": 0, "inhibited": 0}


def test_policy_cooldown_per_dedup_key() -> None:
    policy = Policy(PolicyConfig(cooldown_days={"default": 30.0, "cross_sell": 90.0}))
    first = policy.admit(finding(at=T0))
    assert first is not None and first.finding.occurred_at == T0
    assert policy.admit(finding(at=T0 + timedelta(days=29, hours=23))) is None
    assert policy.admit(finding(key="drift:overdue:C2:o7", at=T0 + timedelta(days=1)))
    # the suppressed finding did not restart the cooldown: 30 days after the first alert
    again = policy.admit(finding(at=T0 + timedelta(days=30)))
    assert again is not None and again.alert_id != first.alert_id
    assert policy.admit(finding(key="x", detector="cross_sell", at=T0)) is not None
    assert policy.admit(finding(key="x", detector="cross_sell", at=T0 + timedelta(days=60))) \
        is None
    assert policy.suppressed == {"below_min_score": 0, "cooldown": 2, "inhibited": 0}


def recent(key: str, at: datetime, detector: str = "drift", kind: str = "overdue",
           subject: str = "C1") -> RecentAlert:
    return RecentAlert(key, detector, kind, "customer", subject, at)


def test_policy_remembers_cooldowns_after_restart() -> None:
    policy = Policy()
    policy.remember([recent("drift:overdue:C1:o1", T0), recent("other", T0)])
    policy.remember([recent("drift:overdue:C1:o1", T0 - timedelta(days=20))])  # older
    assert policy.admit(finding(at=T0 + timedelta(days=10))) is None
    assert policy.admit(finding(at=T0 + timedelta(days=30))) is not None


def test_alert_id_is_deterministic() -> None:
    a, b = finding(), finding()
    assert Alert.id_for(a) == Alert.id_for(b)
    assert re.fullmatch(r"[0-9a-f]{32}", Alert.id_for(a))
    assert Alert.id_for(finding(key="other")) != Alert.id_for(a)
    assert Alert.id_for(finding(at=T0 + timedelta(seconds=1))) != Alert.id_for(a)
    # the score and text are not part of the identity of a situation
    assert Alert.id_for(finding(score=0.99)) == Alert.id_for(a)
    assert Policy().admit(a) == Alert(Alert.id_for(a), a)
