"""The transport-free core: events in, findings out (see engine.py)."""
