"""Delivery: alerts (stored first) -> routing and noise control -> outbox -> notifiers."""
