"""Policy: which findings become alerts (thresholds, cooldown)."""

from sia.policy.inhibition import InhibitRule
from sia.policy.policy import Alert, Policy, PolicyConfig, RecentAlert, load_policy

__all__ = ["Alert", "InhibitRule", "Policy", "PolicyConfig", "RecentAlert", "load_policy"]
