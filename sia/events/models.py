"""Pydantic models of the canonical events, one JSON object per event.

Field names are a public contract: CRM mappings and other tools depend on them.
Models are frozen so detectors cannot mutate what they observe.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from operator import attrgetter
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
)

SCHEMA_VERSION: Final = 1
_DAY: Final = 86_400.0  # seconds; the same as sia.detectors.rhythm.DAY

Id = Annotated[str, Field(min_length=1, max_length=200)]
Channel = Literal["call", "email", "meeting", "ticket", "web_visit", "quote_request", "other"]
Stage = Literal["prospecting", "engaging", "won", "lost"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class EventBase(_Model):
    """Fields every event carries."""

    event_id: Id = Field(description="Idempotency key: an event id is processed once.")
    occurred_at: AwareDatetime = Field(description="RFC 3339 timestamp with a zone.")
    schema_version: Literal[1] = SCHEMA_VERSION

    @field_validator("occurred_at")
    @classmethod
    def _finite_year(cls, value: datetime) -> datetime:
        if not 1970 <= value.year <= 2200:
            raise ValueError("occurred_at must be between 1970 and 2200")
        return value

    @cached_property
    def day(self) -> float:
        """`occurred_at` in days since the epoch (its timestamp / 86,400), the clock every
        detector reasons in: computed once for all of them."""
        return self.occurred_at.timestamp() / _DAY


class OrderLine(_Model):
    """One product line of an order or a return."""

    product_id: Id
    quantity: float = Field(gt=0, allow_inf_nan=False)
    unit_price: float = Field(ge=0, allow_inf_nan=False, description="Net price paid per unit.")
    list_price: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    unit_cost: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    category: str | None = None

    @property
    def amount(self) -> float:
        """Net revenue of the line."""
        return self.quantity * self.unit_price


_PRICED = attrgetter("product_id", "unit_price", "quantity")  # one line's (id, price, quantity)


class _Transaction(EventBase):
    customer_id: Id
    rep_id: Id | None = None
    order_id: Id
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    lines: list[OrderLine] = Field(min_length=1)

    @cached_property
    def amount(self) -> float:
        """Net revenue of all lines (computed once: every detector asks); the same sum, in
        the same order, as of each line's `amount`."""
        return sum(quantity * price for _, price, quantity in self.priced_lines)

    @cached_property
    def priced_lines(self) -> tuple[tuple[str, float, float], ...]:
        """(product_id, unit_price, quantity) of every line, built once for all detectors."""
        return tuple(map(_PRICED, self.lines))

    @cached_property
    def breadth(self) -> int:
        """Distinct products in the order."""
        return len({product for product, _, _ in self.priced_lines})


class Order(_Transaction):
    """A customer's order."""

    type: Literal["order"] = "order"


class Return(_Transaction):
    """Returned lines, with positive quantities."""

    type: Literal["return"] = "return"


class Interaction(EventBase):
    """A call, email, meeting, ticket, web visit or quote request."""

    type: Literal["interaction"] = "interaction"
    customer_id: Id
    rep_id: Id | None = None
    channel: Channel
    sentiment: float | None = Field(default=None, ge=-1, le=1, allow_inf_nan=False)
    product_id: Id | None = None
    summary: str | None = Field(default=None, max_length=10_000)


class Opportunity(EventBase):
    """A change of an opportunity in the pipeline."""

    type: Literal["opportunity"] = "opportunity"
    opportunity_id: Id
    customer_id: Id
    rep_id: Id
    product_id: Id | None = None
    stage: Stage
    amount: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class Customer(EventBase):
    """Reference data about a customer."""

    type: Literal["customer"] = "customer"
    customer_id: Id
    name: str | None = None
    segment: str | None = None
    region: str | None = None
    owner_rep_id: Id | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class Product(EventBase):
    """Reference data about a product."""

    type: Literal["product"] = "product"
    product_id: Id
    name: str | None = None
    category: str | None = None
    list_price: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    unit_cost: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    tier: str | None = None
    upgrade_to: list[Id] = Field(default_factory=list)
    substitutes: list[Id] = Field(default_factory=list)
    discontinued: bool = False


class Rep(EventBase):
    """Reference data about a sales rep."""

    type: Literal["rep"] = "rep"
    rep_id: Id
    name: str | None = None
    team: str | None = None
    manager_id: Id | None = None
    email: str | None = None
    slack_user_id: str | None = None
    timezone: str | None = None


Event = Annotated[
    Order | Return | Interaction | Opportunity | Customer | Product | Rep,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: str | bytes | dict[str, Any]) -> Event:
    """Validate one event from JSON text or a decoded object; raises pydantic.ValidationError."""
    if isinstance(data, dict):
        return EVENT_ADAPTER.validate_python(data)
    return EVENT_ADAPTER.validate_json(data)


def event_json_schema() -> dict[str, Any]:
    """JSON Schema of one event (a tagged union on `type`)."""
    schema = EVENT_ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"SIA event, schema_version {SCHEMA_VERSION}"
    return schema
