"""Hypothesis strategies for valid canonical events (as JSON-ready dicts), one per type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from hypothesis import strategies as st

EVENT_TYPES = ("order", "return", "interaction", "opportunity", "customer", "product", "rep")

REQUIRED: dict[str, tuple[str, ...]] = {
    "order": ("event_id", "occurred_at", "customer_id", "order_id", "lines"),
    "return": ("event_id", "occurred_at", "customer_id", "order_id", "lines"),
    "interaction": ("event_id", "occurred_at", "customer_id", "channel"),
    "opportunity": ("event_id", "occurred_at", "opportunity_id", "customer_id", "rep_id",
                    "stage"),
    "customer": ("event_id", "occurred_at", "customer_id"),
    "product": ("event_id", "occurred_at", "product_id"),
    "rep": ("event_id", "occurred_at", "rep_id"),
}

ids = st.text(
    alphabet=st.characters(categories=("L", "N")) | st.sampled_from("-_.:/#@"),
    min_size=1, max_size=40,
)
# Free text, stripped as the models strip it (so a round trip is exact from the start),
# without what one line of text refuses: controls, line separators, bidirectional
# embeddings, overrides and isolates (surrogates cannot be encoded at all).
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
texts = st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"),
                                       exclude_characters=BIDI_CONTROLS),
                max_size=60).map(str.strip)
fixed_offsets: st.SearchStrategy[tzinfo] = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes)) if minutes else UTC
)
instants = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 12, 30), timezones=fixed_offsets
)
money = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
quantities = st.floats(min_value=0, max_value=1e9, exclude_min=True, allow_nan=False,
                       allow_infinity=False)
# attribute values are flat: JSON scalars
json_values = (st.none() | st.booleans() | st.integers(-(2**53), 2**53)
               | st.floats(allow_nan=False, allow_infinity=False) | texts)


def _base(kind: str) -> dict[str, st.SearchStrategy[Any]]:
    return {"type": st.just(kind), "event_id": ids,
            "occurred_at": instants.map(datetime.isoformat)}


lines = st.fixed_dictionaries(
    {"product_id": ids, "quantity": quantities, "unit_price": money},
    optional={"list_price": money | st.none(), "unit_cost": money | st.none(),
              "category": texts | st.none()},
)


def _transaction(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {**_base(kind), "customer_id": ids, "order_id": ids,
         "lines": st.lists(lines, min_size=1, max_size=4)},
        optional={"rep_id": ids | st.none(),
                  "currency": st.from_regex(r"\A[A-Z]{3}\Z") | st.none(),
                  "schema_version": st.just(1)},
    )


STRATEGIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "order": _transaction("order"),
    "return": _transaction("return"),
    "interaction": st.fixed_dictionaries(
        {**_base("interaction"), "customer_id": ids,
         "channel": st.sampled_from(["call", "email", "meeting", "ticket", "web_visit",
                                     "quote_request", "other"])},
        optional={"rep_id": ids, "product_id": ids, "summary": texts,
                  "sentiment": st.floats(-1, 1, allow_nan=False) | st.none()},
    ),
    "opportunity": st.fixed_dictionaries(
        {**_base("opportunity"), "opportunity_id": ids, "customer_id": ids, "rep_id": ids,
         "stage": st.sampled_from(["prospecting", "engaging", "won", "lost"])},
        optional={"product_id": ids, "amount": money | st.none()},
    ),
    "customer": st.fixed_dictionaries(
        {**_base("customer"), "customer_id": ids},
        optional={"name": texts, "segment": texts, "region": texts, "owner_rep_id": ids,
                  "attributes": st.dictionaries(texts.filter(lambda t: len(t) <= 10), json_values,
                                                max_size=4)},
    ),
    "product": st.fixed_dictionaries(
        {**_base("product"), "product_id": ids},
        optional={"name": texts, "category": texts, "list_price": money, "unit_cost": money,
                  "tier": texts, "upgrade_to": st.lists(ids, max_size=3),
                  "substitutes": st.lists(ids, max_size=3), "discontinued": st.booleans()},
    ),
    "rep": st.fixed_dictionaries(
        {**_base("rep"), "rep_id": ids},
        optional={"name": texts, "team": texts, "manager_id": ids, "email": texts,
                  "slack_user_id": texts, "timezone": texts},
    ),
}

valid_events: st.SearchStrategy[dict[str, Any]] = st.sampled_from(EVENT_TYPES).flatmap(
    STRATEGIES.__getitem__
)
