"""Policy: which findings become alerts (thresholds, cooldown)."""

from sia.policy.policy import Alert, Policy, PolicyConfig, load_policy

__all__ = ["Alert", "Policy", "PolicyConfig", "load_policy"]
