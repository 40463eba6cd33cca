"""Pydantic models of the canonical events, one JSON object per event.

Field names are a public contract: CRM mappings and other tools depend on them.
Models are frozen so detectors cannot mutate what they observe.

Bounds (README, "Events"): every amount is finite and at most a limit (`LIMITS`, from
SIA_EVENT_* settings), so that any arithmetic of bounded amounts stays finite; ids and
free text are limited in length and refuse control characters (`_ID_PATTERN`,
`_LABEL_PATTERN`, `_TEXT_PATTERN`). All of them are constraints compiled into
pydantic-core: they cost nothing on the hot path of `parse_event`.
"""

from __future__ import annotations

import re
import unicodedata
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
    ValidationError,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

SCHEMA_VERSION: Final = 1
_DAY: Final = 86_400.0  # seconds; the same as sia.detectors.rhythm.DAY


class ContractLimits(BaseSettings):
    """Upper bounds of amounts in events, from SIA_EVENT_* settings (environment or
    `.env`), read once when this module is imported.

    The defaults leave room for any real sale in any currency (a unit price of a
    trillion covers capital goods priced in currencies of 40,000 to the dollar; the
    largest line in a year of UCI Online Retail is 80,995 units, the dearest unit
    £38,970) while keeping every product of bounded amounts far inside floating point:
    a line is at most 1e21, an order of `max_lines` lines 1e25, its square 1e50 (floats
    reach 1e308). The ceilings are what the detectors are tested to take.
    """

    model_config = SettingsConfigDict(env_prefix="SIA_EVENT_", env_file=".env",
                                      extra="ignore", frozen=True)

    max_quantity: float = Field(default=1e9, gt=0, le=1e12)  # units on one line
    max_price: float = Field(default=1e12, gt=0, le=1e15)  # unit_price, list_price, unit_cost
    max_amount: float = Field(default=1e15, gt=0, le=1e18)  # an opportunity's amount
    max_lines: int = Field(default=10_000, ge=1, le=100_000)  # lines of one order or return


LIMITS: Final = ContractLimits()

# Characters refused in ids: every control (Unicode category Cc), format character (Cf:
# bidirectional overrides and isolates, zero-width characters, the byte order mark,
# soft hyphen, ...) and line or paragraph separator (Zl, Zp), as of Unicode 14
# (Python 3.11's; tests/hardening checks the list against `unicodedata`). Written with
# escapes that Python's `re` and pydantic-core's Rust regex read alike.
_CC = r"\x00-\x1f\x7f-\x9f"
_BIDI = r"\u202a-\u202e\u2066-\u2069"  # embeddings, overrides, isolates
_SEPARATORS = r"\u2028\u2029"
_CF = (r"\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
       r"\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
       r"\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
       r"\U000e0020-\U000e007f")
_ID_REFUSED = f"{_CC}{_CF}{_SEPARATORS}"
# one line of free text (names, segments, ...): no controls, no bidirectional overrides
# or isolates (text that reads otherwise than it is), no line breaks; other format
# characters (zero-width joiners, left-to-right marks) are parts of real names
_LABEL_REFUSED = f"{_CC}{_BIDI}{_SEPARATORS}"
# several lines (an interaction's summary): tabs and line breaks too
_TEXT_REFUSED = rf"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}"
_ID_PATTERN: Final = f"^[^{_ID_REFUSED}]+$"
_LABEL_PATTERN: Final = f"^[^{_LABEL_REFUSED}]*$"
_TEXT_PATTERN: Final = f"^[^{_TEXT_REFUSED}]*$"
# what each pattern is, and the characters it refuses (only read to explain a refusal)
_PATTERNS: Final = {_ID_PATTERN: ("an id", _ID_REFUSED),
                    _LABEL_PATTERN: ("one line of text", _LABEL_REFUSED),
                    _TEXT_PATTERN: ("text", _TEXT_REFUSED)}

Id = Annotated[str, Field(min_length=1, max_length=200, pattern=_ID_PATTERN)]
Label = Annotated[str, Field(max_length=200, pattern=_LABEL_PATTERN)]  # segment, team, ...
Name = Annotated[str, Field(max_length=500, pattern=_LABEL_PATTERN)]
Email = Annotated[str, Field(max_length=254, pattern=_LABEL_PATTERN)]
Summary = Annotated[str, Field(max_length=10_000, pattern=_TEXT_PATTERN)]
Quantity = Annotated[float, Field(gt=0, le=LIMITS.max_quantity, allow_inf_nan=False)]
Price = Annotated[float, Field(ge=0, le=LIMITS.max_price, allow_inf_nan=False)]
# customer attributes: flat, scalar values (they are shown, not computed with)
AttributeValue = (Annotated[str, Field(max_length=1000, pattern=_LABEL_PATTERN)] | bool
                  | Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
                  | Annotated[float, Field(allow_inf_nan=False)] | None)
Channel = Literal["call", "email", "meeting", "ticket", "web_visit", "quote_request", "other"]
Stage = Literal["prospecting", "engaging", "won", "lost"]


class _Model(BaseModel):
    # a field's docstring is its description in `sia schema`, the OpenAPI and the docs
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True,
                              use_attribute_docstrings=True)


class EventBase(_Model):
    """Fields every event carries."""

    event_id: Id = Field(description="Idempotency key: an event id is processed once.")
    occurred_at: AwareDatetime = Field(
        description="RFC 3339 timestamp with a zone, in the years 1970 to 2200.",
        json_schema_extra={"pattern": r"^(19[7-9][0-9]|2[01][0-9][0-9]|2200)-"})
    schema_version: Literal[1] = SCHEMA_VERSION
    """Version of this contract (1)."""

    @field_validator("occurred_at")
    @classmethod
    def _finite_year(cls, value: datetime) -> datetime:
        if not 1970 <= value.year <= 2200:
            raise ValueError("occurred_at must be between 1970 and 2200")
        offset = value.utcoffset()
        if offset is not None and offset.seconds % 60:  # a datetime given, not RFC 3339
            raise ValueError("occurred_at's zone offset must be whole minutes (RFC 3339): "
                             "it would be written rounded, another instant")
        return value

    @cached_property
    def day(self) -> float:
        """`occurred_at` in days since the epoch (its timestamp / 86,400), the clock every
        detector reasons in: computed once for all of them."""
        return self.occurred_at.timestamp() / _DAY


class OrderLine(_Model):
    """One product line of an order or a return."""

    product_id: Id
    """The product, as the CRM names it (described by a `product` event)."""
    quantity: Quantity
    """Units on the line, positive (a return's lines too)."""
    unit_price: Price = Field(description="Net price paid per unit.")
    list_price: Price | None = None
    """Price per unit before discounts; with it, margin judges price realisation
    (unit_price / list_price)."""
    unit_cost: Price | None = None
    """Cost per unit; with it, margin judges the margin itself."""
    category: Label | None = None
    """The product's category, as on this line."""

    @property
    def amount(self) -> float:
        """Net revenue of the line."""
        return self.quantity * self.unit_price


_PRICED = attrgetter("product_id", "unit_price", "quantity")  # one line's (id, price, quantity)


class _Transaction(EventBase):
    customer_id: Id
    """The customer who ordered (or returned)."""
    rep_id: Id | None = None
    """The rep credited with it; none: the customer's owner rep."""
    order_id: Id
    """The order's number in the CRM."""
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    """ISO 4217 code, e.g. GBP. Amounts are not converted: send one currency per
    stream."""
    lines: list[OrderLine] = Field(min_length=1, max_length=LIMITS.max_lines)
    """The product lines, at least one."""

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
    """The customer the interaction was with."""
    rep_id: Id | None = None
    """The rep who had it, if any."""
    channel: Channel
    """How it happened (drift counts a ticket as a complaint)."""
    sentiment: float | None = Field(default=None, ge=-1, le=1, allow_inf_nan=False)
    """From -1 (angry) to 1 (happy), when the CRM scores it; -0.3 or below counts as a
    complaint for drift."""
    product_id: Id | None = None
    """The product it was about (a quote request or web visit: interest, for trend)."""
    summary: Summary | None = None
    """Free text, shown, never computed with."""


class Opportunity(EventBase):
    """A change of an opportunity in the pipeline."""

    type: Literal["opportunity"] = "opportunity"
    opportunity_id: Id
    """The opportunity; every change of it is one event."""
    customer_id: Id
    """The account it is with."""
    rep_id: Id
    """The rep who owns it (performance follows reps' won revenue and deals)."""
    product_id: Id | None = None
    """The product or product series it is for."""
    stage: Stage
    """The stage it reached with this change."""
    amount: float | None = Field(default=None, ge=0, le=LIMITS.max_amount, allow_inf_nan=False)
    """Its value (the won revenue once `stage` is won)."""


class Customer(EventBase):
    """Reference data about a customer."""

    type: Literal["customer"] = "customer"
    customer_id: Id
    """The customer, as the CRM names them."""
    name: Name | None = None
    """Shown in alerts instead of the id."""
    segment: Label | None = None
    """Alignment compares customers within their segment; thresholds can be set per
    segment."""
    region: Label | None = None
    """Where the customer is (alignment checks the owner team covers it)."""
    owner_rep_id: Id | None = None
    """The rep who owns the account: alerts about the customer go to them."""
    attributes: dict[Label, AttributeValue] = Field(default_factory=dict, max_length=50)
    """Flat extra values from the CRM, shown with the customer, never computed with."""


class Product(EventBase):
    """Reference data about a product."""

    type: Literal["product"] = "product"
    product_id: Id
    """The product, as order lines name it."""
    name: Name | None = None
    """Shown in alerts instead of the id."""
    category: Label | None = None
    """Its category (trend and cross-sell use it)."""
    list_price: Price | None = None
    """Price per unit before discounts (for lines that do not say theirs)."""
    unit_cost: Price | None = None
    """Cost per unit (for lines that do not say theirs)."""
    tier: Label | None = None
    """Its tier in a product series (up-sell suggests the next one)."""
    upgrade_to: list[Id] = Field(default_factory=list, max_length=100)
    """Products that are an upgrade of it (up-sell)."""
    substitutes: list[Id] = Field(default_factory=list, max_length=100)
    """Products that can replace it (switch-sell)."""
    discontinued: bool = False
    """No longer sold: switch-sell suggests a substitute to its buyers."""


class Rep(EventBase):
    """Reference data about a sales rep."""

    type: Literal["rep"] = "rep"
    rep_id: Id
    """The rep, as orders and customers name them."""
    name: Name | None = None
    """Shown in alerts and the console."""
    team: Label | None = None
    """Their team: team thresholds, team channels and managers' views go by it."""
    manager_id: Id | None = None
    """The rep who manages them (alerts about the rep go to the manager)."""
    email: Email | None = None
    """Where email alerts go."""
    slack_user_id: Label | None = None
    """Slack member id for direct messages."""
    timezone: Label | None = None
    """IANA zone (e.g. Europe/London) for quiet hours and daily digests."""


Event = Annotated[
    Order | Return | Interaction | Opportunity | Customer | Product | Rep,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: str | bytes | dict[str, Any]) -> Event:
    """Validate one event from JSON text or a decoded object; raises pydantic.ValidationError
    (with a refused character named, not the pattern it fails)."""
    try:
        if isinstance(data, dict):
            return EVENT_ADAPTER.validate_python(data)
        return EVENT_ADAPTER.validate_json(data)
    except ValidationError as exc:
        raise _in_words(exc) from None


def _in_words(exc: ValidationError) -> ValidationError:
    """`exc` with what pydantic says obscurely said in words (only ever on the error
    path): a mismatch of our text patterns names the character, where it is and what is
    refused; an attribute value of none of the allowed types is one error, not four."""
    errors = exc.errors(include_url=False)
    if not any(e["type"] == "string_pattern_mismatch" or _attribute_member(e["loc"])
               for e in errors):
        return exc
    # an attribute that is a string breaking a bound is said as such, else as one error
    strings = {e["loc"][:3] for e in errors if _attribute_member(e["loc"])
               and e["loc"][3] == "constrained-str"
               and e["type"] in ("string_pattern_mismatch", "string_too_long")}
    details: list[InitErrorDetails] = []
    said: set[tuple[int | str, ...]] = set()
    for error in errors:
        loc, value = error["loc"], error.get("input")
        if _attribute_member(loc):
            if loc[:3] in said or (loc[:3] in strings and loc[3] != "constrained-str"):
                continue
            said.add(loc[:3])
            if loc[:3] not in strings:
                details.append({"type": PydanticCustomError(
                    "attribute_value", "an attribute is a string, number, true, false or "
                    "null (attributes are flat)"), "loc": loc[:3], "input": value})
                continue
            loc = loc[:3]
        known = _PATTERNS.get((error.get("ctx") or {}).get("pattern", ""))
        if error["type"] == "string_pattern_mismatch" and known is not None \
                and isinstance(value, str):
            kind, refused = known
            found = re.search(f"[{refused}]", value.strip())
            what = (f"U+{ord(found[0]):04X} ({unicodedata.name(found[0], 'a control character')})"
                    f" at position {found.start()}" if found else "a refused character")
            details.append({"type": PydanticCustomError(
                "refused_character",
                "{what} is not allowed in {kind} (no control characters, bidirectional "
                "overrides or line separators)", {"what": what, "kind": kind}),
                "loc": loc, "input": value})
        else:
            details.append({**error, "loc": loc})  # type: ignore[typeddict-unknown-key]
    return ValidationError.from_exception_data(exc.title, details)


def _attribute_member(loc: tuple[int | str, ...]) -> bool:
    """`loc` is of one member of the union of attribute value types (not of a key)."""
    return len(loc) == 4 and loc[1] == "attributes" and loc[3] != "[key]"


def event_json_schema() -> dict[str, Any]:
    """JSON Schema of one event (a tagged union on `type`)."""
    schema = EVENT_ADAPTER.json_schema()
    for definition in schema["$defs"].values():  # the tag has a default, but is required
        if "type" in definition.get("properties", {}):
            definition["required"] = ["type", *definition.get("required", [])]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"SIA event, schema_version {SCHEMA_VERSION}"
    return schema
