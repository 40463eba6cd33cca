"""Transports drive the engine: embedded (one process) today."""
