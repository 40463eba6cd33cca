"""Importers: turn CRM and dataset exports into canonical SIA events."""
