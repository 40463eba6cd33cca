"""Revisions of the alert store's schema, oldest first."""
