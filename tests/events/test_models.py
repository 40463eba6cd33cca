"""Property tests of the event contract: valid events round-trip, broken ones are refused."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from sia.events import SCHEMA_VERSION, event_json_schema, parse_event
from sia.events.models import (
    Customer,
    Interaction,
    Opportunity,
    Order,
    Product,
    Rep,
    Return,
)
from sia.events.reader import Reject, validate_line

from .strategies import EVENT_TYPES, REQUIRED, STRATEGIES, ids, valid_events

PROPERTY = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
VALIDATOR = Draft202012Validator(event_json_schema())
MODEL_OF = {"order": Order, "return": Return, "interaction": Interaction,
            "opportunity": Opportunity, "customer": Customer, "product": Product, "rep": Rep}


def reason_for(data: dict[str, Any]) -> str:
    """The event is refused both as a dict and as a JSON line; the reader's reason."""
    with pytest.raises(ValidationError):
        parse_event(data)
    result = validate_line(json.dumps(data), source="test.jsonl", line=7)
    assert isinstance(result, Reject)
    assert (result.source, result.line) == ("test.jsonl", 7)
    return result.reason


# --- valid events --------------------------------------------------------------------


@pytest.mark.parametrize("kind", EVENT_TYPES)
@PROPERTY
@given(data=st.data())
def test_valid_events_of_every_type_round_trip_through_json(kind: str, data: st.DataObject,
                                                            ) -> None:
    raw = data.draw(STRATEGIES[kind])
    event = parse_event(raw)
    assert isinstance(event, MODEL_OF[kind])
    assert event.type == kind
    assert event.schema_version == SCHEMA_VERSION

    text = event.model_dump_json()
    again = parse_event(text)
    assert again == event
    assert type(again) is type(event)
    assert again.model_dump_json() == text  # serialisation is stable


@PROPERTY
@given(raw=valid_events)
def test_parsing_keeps_every_given_value(raw: dict[str, Any]) -> None:
    event = parse_event(raw)
    dumped = event.model_dump()
    for key, value in raw.items():
        if key == "occurred_at":
            assert dumped[key] == datetime.fromisoformat(value)
            assert dumped[key].utcoffset() == datetime.fromisoformat(value).utcoffset()
        elif key == "lines":
            assert len(dumped["lines"]) == len(value)
            for got, given_line in zip(dumped["lines"], value, strict=True):
                assert {k: got[k] for k in given_line} == given_line
        else:
            assert dumped[key] == value, key


@PROPERTY
@given(raw=valid_events, when=st.datetimes(min_value=datetime(1970, 1, 2),
                                           max_value=datetime(2200, 12, 30),
                                           timezones=st.timezones(), allow_imaginary=False))
def test_named_time_zones_round_trip_to_the_same_instant_and_offset(
        raw: dict[str, Any], when: datetime) -> None:
    offset = when.utcoffset()
    if offset is not None and offset.seconds % 60:  # local mean time (Monrovia in 1972)
        with pytest.raises(ValidationError, match="whole minutes"):
            parse_event({**raw, "occurred_at": when})
        return
    event = parse_event({**raw, "occurred_at": when})
    again = parse_event(event.model_dump_json())
    assert again.occurred_at.timestamp() == when.timestamp()
    assert again.occurred_at.utcoffset() == when.utcoffset()


def test_amounts_of_transactions_sum_their_lines() -> None:
    order = parse_event({"type": "order", "event_id": "e1", "occurred_at": "2024-01-01T10:00Z",
                         "customer_id": "c", "order_id": "o",
                         "lines": [{"product_id": "a", "quantity": 2, "unit_price": 1.5},
                                   {"product_id": "b", "quantity": 1, "unit_price": 4}]})
    assert isinstance(order, Order)
    assert order.amount == pytest.approx(7.0)
    assert [line.amount for line in order.lines] == [3.0, 4.0]


def test_events_are_frozen() -> None:
    event = parse_event({"type": "rep", "event_id": "e", "occurred_at": "2024-01-01T00:00Z",
                         "rep_id": "r"})
    with pytest.raises(ValidationError):
        event.rep_id = "other"  # type: ignore[misc]


# --- broken events -------------------------------------------------------------------


@PROPERTY
@given(data=st.data())
def test_missing_required_field_is_refused_and_named(data: st.DataObject) -> None:
    raw = data.draw(valid_events)
    missing = data.draw(st.sampled_from(REQUIRED[raw["type"]]))
    del raw[missing]
    assert missing in reason_for(raw)


@PROPERTY
@given(raw=valid_events)
def test_missing_type_is_refused_and_named(raw: dict[str, Any]) -> None:
    del raw["type"]
    assert "'type'" in reason_for(raw)


@PROPERTY
@given(raw=valid_events, naive=st.datetimes(min_value=datetime(1971, 1, 1),
                                            max_value=datetime(2199, 1, 1)))
def test_naive_datetime_without_zone_is_refused(raw: dict[str, Any], naive: datetime) -> None:
    raw["occurred_at"] = naive.isoformat()
    reason = reason_for(raw)
    assert "occurred_at" in reason
    assert "timezone" in reason.lower()


@PROPERTY
@given(raw=valid_events, year=st.integers(1, 1969) | st.integers(2201, 9999))
def test_occurred_at_outside_1970_to_2200_is_refused(raw: dict[str, Any], year: int) -> None:
    raw["occurred_at"] = f"{year:04d}-06-01T12:00:00+00:00"
    assert "occurred_at" in reason_for(raw)


@PROPERTY
@given(data=st.data(), kind=st.sampled_from(["order", "return"]),
       quantity=st.floats(max_value=0) | st.just(float("nan")) | st.just(float("inf")))
def test_non_positive_or_non_finite_quantity_is_refused(data: st.DataObject, kind: str,
                                                         quantity: float) -> None:
    raw = data.draw(STRATEGIES[kind])
    index = data.draw(st.integers(0, len(raw["lines"]) - 1))
    raw["lines"][index]["quantity"] = quantity
    with pytest.raises(ValidationError) as info:
        parse_event(raw)
    locations = [err["loc"] for err in info.value.errors()]
    assert locations == [(kind, "lines", index, "quantity")]
    if quantity == quantity and abs(quantity) != float("inf"):  # JSON cannot carry NaN/inf
        assert f"lines.{index}.quantity" in reason_for(raw)


@PROPERTY
@given(data=st.data(), field=st.sampled_from(["unit_price", "list_price", "unit_cost"]),
       value=st.floats(max_value=-1e-9, allow_infinity=False))
def test_negative_prices_are_refused(data: st.DataObject, field: str, value: float) -> None:
    raw = data.draw(STRATEGIES["order"])
    raw["lines"][0][field] = value
    assert f"lines.0.{field}" in reason_for(raw)


@PROPERTY
@given(raw=valid_events, kind=st.text(max_size=20).filter(lambda t: t not in EVENT_TYPES))
def test_unknown_type_is_refused(raw: dict[str, Any], kind: str) -> None:
    raw["type"] = kind
    reason = reason_for(raw)
    assert "'type'" in reason
    assert "does not match any of the expected tags" in reason


@PROPERTY
@given(raw=valid_events, name=ids, value=st.integers() | st.text(max_size=5))
def test_extra_field_is_refused_and_named(raw: dict[str, Any], name: str, value: Any) -> None:
    if name in MODEL_OF[raw["type"]].model_fields:
        name = f"x_{name}"
    raw[name] = value
    reason = reason_for(raw)
    assert f"{raw['type']}.{name}" in reason
    assert "Extra inputs are not permitted" in reason


@PROPERTY
@given(data=st.data(), kind=st.sampled_from(["order", "return"]))
def test_extra_field_on_a_line_is_refused(data: st.DataObject, kind: str) -> None:
    raw = data.draw(STRATEGIES[kind])
    raw["lines"][0]["discount"] = 0.1
    assert f"{kind}.lines.0.discount" in reason_for(raw)


@PROPERTY
@given(raw=STRATEGIES["interaction"],
       sentiment=st.floats(min_value=1, exclude_min=True, allow_infinity=False)
       | st.floats(max_value=-1, exclude_max=True, allow_infinity=False))
def test_sentiment_out_of_range_is_refused(raw: dict[str, Any], sentiment: float) -> None:
    raw["sentiment"] = sentiment
    assert "interaction.sentiment" in reason_for(raw)


@PROPERTY
@given(raw=valid_events, version=st.integers().filter(lambda v: v != 1) | st.text(max_size=3))
def test_wrong_schema_version_is_refused(raw: dict[str, Any], version: Any) -> None:
    raw["schema_version"] = version
    assert "schema_version" in reason_for(raw)


@PROPERTY
@given(kind=st.sampled_from(["order", "return"]), data=st.data())
def test_empty_lines_list_is_refused(kind: str, data: st.DataObject) -> None:
    raw = data.draw(STRATEGIES[kind])
    raw["lines"] = []
    assert f"{kind}.lines" in reason_for(raw)


@PROPERTY
@given(data=st.data(), field=st.sampled_from(["event_id", "customer_id", "order_id"]),
       blank=st.sampled_from(["", " ", "\t \n"]))
def test_blank_ids_are_refused(data: st.DataObject, field: str, blank: str) -> None:
    raw = data.draw(STRATEGIES["order"])
    raw[field] = blank
    assert f"order.{field}" in reason_for(raw)


@pytest.mark.parametrize("currency", ["gbp", "GB", "GBPX", "G8P", ""])
def test_currency_must_be_three_capital_letters(currency: str) -> None:
    raw = {"type": "order", "event_id": "e", "occurred_at": "2024-01-01T00:00Z",
           "customer_id": "c", "order_id": "o", "currency": currency,
           "lines": [{"product_id": "p", "quantity": 1, "unit_price": 1}]}
    assert "order.currency" in reason_for(raw)


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [("interaction", "channel", "fax"), ("opportunity", "stage", "closed"),
     ("opportunity", "amount", -5)],
)
def test_closed_vocabularies_and_ranges(kind: str, field: str, value: Any) -> None:
    raw = {"type": kind, "event_id": "e", "occurred_at": "2024-01-01T00:00Z",
           "customer_id": "c", "opportunity_id": "o", "rep_id": "r", "channel": "call",
           "stage": "won"}
    raw = {k: v for k, v in raw.items() if k in MODEL_OF[kind].model_fields}
    assert parse_event(raw).type == kind  # valid before the mutation
    raw[field] = value
    assert f"{kind}.{field}" in reason_for(raw)


# --- JSON Schema ---------------------------------------------------------------------


def test_json_schema_is_valid_draft_2020_12() -> None:
    schema = event_json_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert str(SCHEMA_VERSION) in schema["title"]


@PROPERTY
@given(raw=valid_events)
def test_json_schema_accepts_every_valid_event(raw: dict[str, Any]) -> None:
    document = json.loads(parse_event(raw).model_dump_json())
    errors = [error.message for error in VALIDATOR.iter_errors(document)]
    assert errors == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e.update(type="refund"),
        lambda e: e.pop("event_id"),
        lambda e: e.update(extra_field=1),
        lambda e: e.update(lines=[]),
        lambda e: e["lines"][0].update(quantity=0),
        lambda e: e.update(schema_version=2),
    ],
    ids=["unknown type", "missing event_id", "extra field", "empty lines", "zero quantity",
         "schema_version 2"],
)
def test_json_schema_rejects_broken_events(mutate: Any) -> None:
    validator = VALIDATOR
    example = {"type": "order", "event_id": "crm-1", "occurred_at": "2024-01-01T10:00:00Z",
               "customer_id": "c1", "order_id": "o1", "currency": "EUR",
               "lines": [{"product_id": "p1", "quantity": 2, "unit_price": 9.5}]}
    assert validator.is_valid(example)
    mutate(example)
    assert not validator.is_valid(example)
