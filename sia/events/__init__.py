"""The canonical event contract: what CRM systems post to SIA."""

from sia.events.models import (
    SCHEMA_VERSION,
    Customer,
    Event,
    Interaction,
    Opportunity,
    Order,
    OrderLine,
    Product,
    Rep,
    Return,
    event_json_schema,
    parse_event,
)

__all__ = [
    "SCHEMA_VERSION",
    "Customer",
    "Event",
    "Interaction",
    "Opportunity",
    "Order",
    "OrderLine",
    "Product",
    "Rep",
    "Return",
    "event_json_schema",
    "parse_event",
]
