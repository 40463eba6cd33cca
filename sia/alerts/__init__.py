"""Alerts are stored before anything is sent."""
