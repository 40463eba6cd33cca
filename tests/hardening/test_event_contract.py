"""Hardening, input that corrupts: the event contract bounds amounts, limits text and
refuses control characters, with a reason that names the field (issue 18)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from typing import Any

import pytest

from sia.events.models import _ID_REFUSED, _LABEL_REFUSED, LIMITS, event_json_schema
from sia.events.reader import Reject, validate_line


def order(**line: Any) -> dict[str, Any]:
    return {"type": "order", "event_id": "o-1", "occurred_at": "2011-03-02T10:15:00+00:00",
            "customer_id": "C42", "order_id": "1001",
            "lines": [{"product_id": "22727", "quantity": 12, "unit_price": 3.75, **line}]}


def customer(**fields: Any) -> dict[str, Any]:
    return {"type": "customer", "event_id": "c-1", "occurred_at": "2011-03-02T10:15:00Z",
            "customer_id": "C42", **fields}


def reason(record: dict[str, Any]) -> str:
    result = validate_line(json.dumps(record), source="events.jsonl", line=3)
    assert isinstance(result, Reject), f"accepted: {record}"
    return result.reason


@pytest.mark.parametrize(("field", "value"), [
    ("quantity", 1e308), ("quantity", LIMITS.max_quantity * 1.5),
    ("unit_price", 1e307), ("unit_price", LIMITS.max_price * 2),
    ("list_price", 1e300), ("unit_cost", 1e300)])
def test_huge_finite_amounts_are_refused_naming_the_field(field: str, value: float) -> None:
    # before: quantity 1e308 crashed the replay in alignment (math.log of inf), unit_price
    # 1e307 in up-sell (int of price * 100)
    said = reason(order(**{field: value}))
    assert f"order.lines.0.{field}" in said
    assert "less than or equal to" in said


def test_the_largest_amounts_allowed_are_accepted() -> None:
    record = order(quantity=LIMITS.max_quantity, unit_price=LIMITS.max_price,
                   list_price=LIMITS.max_price, unit_cost=LIMITS.max_price)
    assert not isinstance(validate_line(json.dumps(record), source="x", line=1), Reject)


def test_opportunity_amounts_and_line_counts_are_bounded() -> None:
    opportunity = {"type": "opportunity", "event_id": "p", "occurred_at": "2017-01-01T00:00Z",
                   "opportunity_id": "o", "customer_id": "c", "rep_id": "r", "stage": "won",
                   "amount": 1e300}
    assert "opportunity.amount" in reason(opportunity)
    many = order()
    many["lines"] = many["lines"] * (LIMITS.max_lines + 1)
    assert "order.lines" in reason(many)


def test_bounds_are_in_the_json_schema() -> None:
    schema = json.dumps(event_json_schema())
    assert f'"maximum": {LIMITS.max_quantity}' in schema
    assert f'"maximum": {LIMITS.max_price}' in schema


def test_bounds_are_configurable_through_the_environment() -> None:
    code = ("import json; from sia.events.models import LIMITS, parse_event\n"
            "print(LIMITS.max_quantity)\n"
            "parse_event(json.loads(input()))\n")
    env = {**os.environ, "SIA_EVENT_MAX_QUANTITY": "10"}
    run = subprocess.run([sys.executable, "-c", code], input=json.dumps(order(quantity=12)),
                         capture_output=True, text=True, env=env, check=False)
    assert run.stdout.splitlines()[0] == "10.0"
    assert "less than or equal to 10" in run.stderr
    env["SIA_EVENT_MAX_QUANTITY"] = "1e300"  # beyond what the detectors are tested to take
    run = subprocess.run([sys.executable, "-c", code], input="{}", capture_output=True,
                         text=True, env=env, check=False)
    assert run.returncode != 0 and "max_quantity" in run.stderr


@pytest.mark.parametrize(("field", "value", "named"), [
    ("event_id", "o-1\x00", "U+0000"),
    ("customer_id", "C\u202e24", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    ("customer_id", "C\u200b42", "U+200B (ZERO WIDTH SPACE)"),
    ("order_id", "10\u2028 01", "U+2028 (LINE SEPARATOR)"),
    ("rep_id", "rep\x1b[31m", "U+001B"),
])
def test_control_and_format_characters_in_ids_are_refused(field: str, value: str,
                                                          named: str) -> None:
    said = reason({**order(), field: value})
    assert f"order.{field}" in said
    assert named in said
    assert "not allowed in an id" in said


def test_a_product_id_on_a_line_is_an_id_too() -> None:
    said = reason(order(product_id="22727\u2066"))
    assert "order.lines.0.product_id" in said and "U+2066" in said


@pytest.mark.parametrize(("field", "value"), [
    ("name", "ACME\nHIGH customer 1: no order for 999 days"),  # a forged second line
    ("name", "evil\u202etxt.exe"),
    ("segment", "Key\x00"),
    ("region", "West\u2029East"),
])
def test_control_characters_in_one_line_of_text_are_refused(field: str, value: str) -> None:
    said = reason(customer(**{field: value}))
    assert f"customer.{field}" in said
    assert "not allowed in one line of text" in said


def test_real_names_keep_their_joiners_and_marks() -> None:
    # zero-width non-joiner (Persian), zero-width joiner (emoji), left-to-right mark
    name = ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \U0001f469\u200d\U0001f4bb "
            "\u05e9\u05dc\u05d5\u05dd\u200e A")
    record = customer(name=name)
    assert not isinstance(validate_line(json.dumps(record), source="x", line=1), Reject)


def test_a_summary_may_have_lines_but_no_controls() -> None:
    interaction = {"type": "interaction", "event_id": "i", "occurred_at": "2024-01-01T00:00Z",
                   "customer_id": "c", "channel": "call"}
    ok = {**interaction, "summary": "Called.\n\tWants a quote.\r\nFollow up."}
    assert not isinstance(validate_line(json.dumps(ok), source="x", line=1), Reject)
    said = reason({**interaction, "summary": "ok\x07\x08"})
    assert "interaction.summary" in said and "U+0007" in said


@pytest.mark.parametrize(("field", "limit"), [("name", 500), ("segment", 200),
                                              ("region", 200)])
def test_free_text_lengths_are_limited(field: str, limit: int) -> None:
    assert not isinstance(validate_line(json.dumps(customer(**{field: "x" * limit})),
                                        source="x", line=1), Reject)
    said = reason(customer(**{field: "x" * (limit + 1)}))
    assert f"customer.{field}" in said and f"at most {limit} characters" in said


def test_attributes_are_flat_bounded_and_clean() -> None:
    assert not isinstance(validate_line(json.dumps(customer(attributes={
        "city": "Athens", "employees": 12, "revenue": 3.5, "listed": True, "parent": None})),
        source="x", line=1), Reject)
    said = reason(customer(attributes={"nested": {"deep": [1, 2]}}))
    assert "customer.attributes.nested: an attribute is a string, number" in said
    assert "customer.attributes.city" in reason(customer(attributes={"city": "x" * 1001}))
    assert "U+0000" in reason(customer(attributes={"city": "a\x00"}))
    assert "customer.attributes" in reason(customer(attributes={str(i): i for i in range(51)}))


def test_the_refused_characters_are_unicode_controls_and_format_characters() -> None:
    # the class in the patterns is written out (pydantic-core's regex and Python's `re`
    # must read it alike): it must be exactly Cc, Cf, Zl and Zp of this Python's Unicode
    import re

    refused_id = re.compile(f"[{_ID_REFUSED}]")
    refused_label = re.compile(f"[{_LABEL_REFUSED}]")
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        category = unicodedata.category(char)
        if category == "Cs":
            continue
        assert bool(refused_id.match(char)) == (category in ("Cc", "Cf", "Zl", "Zp")), \
            f"U+{code:04X} {category}"
        bidi = code in range(0x202A, 0x202F) or code in range(0x2066, 0x206A)
        assert bool(refused_label.match(char)) == (category in ("Cc", "Zl", "Zp") or bidi), \
            f"U+{code:04X} {category}"
