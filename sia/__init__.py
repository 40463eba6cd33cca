"""SIA: sales-intelligence alerting over CRM event streams."""

__version__ = "0.1.0"
