"""Alembic migrations of the alert store (alerts and the delivery outbox), shipped with SIA.

`sia.alerts.schema.migrate(url)` applies them; stores apply them when they open.
"""
