"""The generic CSV importer driven by a column-mapping file."""

from __future__ import annotations

import gzip
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
import yaml

from sia.config import ConfigError
from sia.events import parse_event
from sia.importers import csv_mapping
from sia.importers.csv_mapping import MappingError, convert_with_mapping, load_mapping
from sia.importers.online_retail import ImportReport, convert

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "config" / "mappings"
DATA = Path(__file__).resolve().parent / "data"

HEADER = "Invoice,Date,Customer,Sku,Qty,Price"
BASE = """\
type: {default: order, return_when: {column: Invoice, startswith: "C"}}
group_by: Invoice
fields:
  event_id: {template: "crm-{Invoice}"}
  occurred_at: {column: Date, format: "%Y-%m-%d %H:%M", timezone: Europe/London}
  customer_id: Customer
  order_id: Invoice
  currency: {value: GBP}
lines:
  product_id: Sku
  quantity: Qty
  unit_price: Price
"""


def base(**changes: Any) -> dict[str, Any]:
    """BASE as data, with top-level keys replaced (None deletes a key)."""
    data: dict[str, Any] = yaml.safe_load(BASE)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def write(tmp_path: Path, rows: list[str] | str, mapping: dict[str, Any] | str,
          header: str = HEADER) -> tuple[Path, Path]:
    csv_path = tmp_path / "export.csv"
    body = rows if isinstance(rows, str) else "\n".join([header, *rows]) + "\n"
    csv_path.write_text(body, encoding="utf-8")
    mapping_path = tmp_path / "mapping.yaml"
    text = mapping if isinstance(mapping, str) else yaml.safe_dump(mapping, sort_keys=False)
    mapping_path.write_text(text, encoding="utf-8")
    return csv_path, mapping_path


def run(tmp_path: Path, rows: list[str] | str, mapping: dict[str, Any] | str = BASE,
        header: str = HEADER) -> tuple[list[dict[str, Any]], ImportReport]:
    csv_path, mapping_path = write(tmp_path, rows, mapping, header)
    report = ImportReport()
    events = list(convert_with_mapping(csv_path, mapping_path, report))
    for event in events:
        parse_event(event)  # every output event honours the contract
    assert report.events == len(events)
    return events, report


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str, list[tuple[Any, ...]]]]:
    return [(e["type"], e["order_id"],
             [(li["product_id"], li["quantity"], li["unit_price"]) for li in e["lines"]])
            for e in events]


# --- grouping and returns -----------------------------------------------------------

GROUPING_CASES = {
    "lines of an invoice form one order": (
        BASE,
        ["1001,2024-01-10 09:00,C1,A,2,1.50", "1001,2024-01-10 09:00,C1,B,1,4"],
        [("order", "1001", [("A", 2.0, 1.5), ("B", 1.0, 4.0)])],
    ),
    "rows of an invoice need not be adjacent": (
        BASE,
        ["1001,2024-01-10 09:00,C1,A,2,1.5", "1002,2024-01-10 09:05,C2,A,1,1.5",
         "1001,2024-01-10 09:00,C1,B,3,2"],
        [("order", "1001", [("A", 2.0, 1.5), ("B", 3.0, 2.0)]),
         ("order", "1002", [("A", 1.0, 1.5)])],
    ),
    "C invoices are returns with positive quantities": (
        BASE,
        ["C1003,2024-01-11 10:00,C1,A,-2,1.5", "C1003,2024-01-11 10:00,C1,B,-1,4"],
        [("return", "C1003", [("A", 2.0, 1.5), ("B", 1.0, 4.0)])],
    ),
    "a negative quantity can make the return": (
        BASE.replace('{column: Invoice, startswith: "C"}', "{column: Qty, below: 0}"),
        ["7,2024-01-11 10:00,C1,A,-2,1.5", "8,2024-01-11 11:00,C1,A,5,1.5"],
        [("return", "7", [("A", 2.0, 1.5)]), ("order", "8", [("A", 5.0, 1.5)])],
    ),
    "a fixed return type also makes quantities positive": (
        BASE.replace('{default: order, return_when: {column: Invoice, startswith: "C"}}',
                     "return"),
        ["R1,2024-01-11 10:00,C1,A,-2,1.5", "R1,2024-01-11 10:00,C1,B,3,1"],
        [("return", "R1", [("A", 2.0, 1.5), ("B", 3.0, 1.0)])],
    ),
    "without group_by one row is one event": (
        BASE.replace("group_by: Invoice\n", "").replace("crm-{Invoice}", "crm-{Invoice}-{Sku}"),
        ["1001,2024-01-10 09:00,C1,A,2,1.5", "1001,2024-01-10 09:00,C1,B,1,4"],
        [("order", "1001", [("A", 2.0, 1.5)]), ("order", "1001", [("B", 1.0, 4.0)])],
    ),
    "group_by over two columns": (
        BASE.replace("group_by: Invoice", "group_by: [Invoice, Customer]")
            .replace("crm-{Invoice}", "crm-{Invoice}-{Customer}"),
        ["1,2024-01-10 09:00,C1,A,2,1.5", "1,2024-01-10 09:00,C2,A,1,1.5",
         "1,2024-01-10 09:00,C1,B,1,1"],
        [("order", "1", [("A", 2.0, 1.5), ("B", 1.0, 1.0)]), ("order", "1", [("A", 1.0, 1.5)])],
    ),
}


@pytest.mark.parametrize(("mapping", "rows", "expected"), GROUPING_CASES.values(),
                         ids=GROUPING_CASES.keys())
def test_grouping_and_returns(tmp_path: Path, mapping: str, rows: list[str],
                              expected: list[Any]) -> None:
    events, report = run(tmp_path, rows, mapping)
    assert summary(events) == expected
    assert report.skipped == Counter()
    assert report.rows == len(rows)
    assert report.orders == sum(1 for e in expected if e[0] == "order")
    assert report.returns == sum(1 for e in expected if e[0] == "return")


def test_grouped_event_has_the_full_shape(tmp_path: Path) -> None:
    events, _ = run(tmp_path, ["1001,2024-01-10 09:00,C1,A,2,1.50",
                               "1001,2024-01-10 09:01,C1,B,1,4"])
    assert events == [{
        "type": "order", "event_id": "crm-1001", "occurred_at": "2024-01-10T09:00:00+00:00",
        "customer_id": "C1", "order_id": "1001", "currency": "GBP",
        "lines": [{"product_id": "A", "quantity": 2.0, "unit_price": 1.5},
                  {"product_id": "B", "quantity": 1.0, "unit_price": 4.0}],
    }]


def test_group_takes_its_earliest_time(tmp_path: Path) -> None:
    events, _ = run(tmp_path, ["1,2024-01-10 09:05,C1,A,1,1", "1,2024-01-10 09:04,C1,B,1,1"])
    assert events[0]["occurred_at"] == "2024-01-10T09:04:00+00:00"


def test_events_are_sorted_by_time_stably(tmp_path: Path) -> None:
    rows = ["3,2024-03-01 10:00,C1,A,1,1", "1,2024-01-01 10:00,C1,A,1,1",
            "4,2024-03-01 10:00,C1,A,1,1", "2,2024-02-01 10:00,C1,A,1,1",
            "0,2024-03-01 10:00,C1,A,1,1"]
    events, _ = run(tmp_path, rows)
    assert [e["order_id"] for e in events] == ["1", "2", "3", "4", "0"]


# --- timestamps ---------------------------------------------------------------------

TIME_CASES = {
    "London winter": ({"column": "Date", "format": "%Y-%m-%d %H:%M",
                       "timezone": "Europe/London"}, "2024-01-15 10:00",
                      "2024-01-15T10:00:00+00:00"),
    "London summer": ({"column": "Date", "format": "%Y-%m-%d %H:%M",
                       "timezone": "Europe/London"}, "2024-07-15 10:00",
                      "2024-07-15T10:00:00+01:00"),
    "New York summer": ({"column": "Date", "format": "%d/%m/%Y %H:%M",
                         "timezone": "America/New_York"}, "15/07/2024 10:00",
                        "2024-07-15T10:00:00-04:00"),
    "second format of a list": ({"column": "Date", "format": ["%Y-%m-%d %H:%M", "%m/%d/%Y"],
                                 "timezone": "UTC"}, "07/15/2024", "2024-07-15T00:00:00+00:00"),
    "ISO with its own offset keeps it": ({"column": "Date", "timezone": "Europe/London"},
                                         "2024-07-15T10:00:00+02:00",
                                         "2024-07-15T10:00:00+02:00"),
    "ISO with Z needs no timezone": ({"column": "Date"}, "2024-07-15T10:00:00Z",
                                     "2024-07-15T10:00:00+00:00"),
    "naive ISO localised": ({"column": "Date", "timezone": "Asia/Tokyo"}, "2024-07-15 10:00",
                            "2024-07-15T10:00:00+09:00"),
    "format with %z": ({"column": "Date", "format": "%Y-%m-%d %H:%M %z"},
                       "2024-07-15 10:00 -0130", "2024-07-15T10:00:00-01:30"),
    "template of date and time": ({"template": "{Day} {Date}", "format": "%Y-%m-%d %H:%M",
                                   "timezone": "Europe/Paris"}, "10:00",
                                  "2024-02-01T10:00:00+01:00"),
    "constant": ({"value": "2024-05-05T05:05:05+00:00"}, "ignored",
                 "2024-05-05T05:05:05+00:00"),
}


@pytest.mark.parametrize(("spec", "cell", "expected"), TIME_CASES.values(),
                         ids=TIME_CASES.keys())
def test_timestamps(tmp_path: Path, spec: dict[str, Any], cell: str, expected: str) -> None:
    mapping = base()
    mapping["fields"]["occurred_at"] = spec
    events, report = run(tmp_path, f"Day,{HEADER}\n2024-02-01,1,{cell},C1,A,1,1\n", mapping)
    assert report.skipped == Counter()
    assert [e["occurred_at"] for e in events] == [expected]


ISO = {"column": "Date", "timezone": "UTC"}
TIME_ERRORS = {
    "naive ISO without timezone": ({"column": "Date"}, "2024-07-15T10:00:00Z",
                                   "2024-07-15T10:00:00", "has no time zone"),
    "does not match the format": ({"column": "Date", "format": "%Y-%m-%d %H:%M",
                                   "timezone": "UTC"}, "2024-07-15 10:00", "15.07.2024",
                                  "does not match the format"),
    "not ISO": (ISO, "2024-07-15", "yesterday", "not an ISO 8601"),
    "before 1970": (ISO, "1970-01-01", "1969-12-31T10:00", "between 1970 and 2200"),
    "after 2200": (ISO, "2200-12-31", "2201-01-01", "between 1970 and 2200"),
    "empty": (ISO, "2024-07-15", "", "column 'Date' is empty"),
}


@pytest.mark.parametrize(("spec", "good", "bad", "reason"), TIME_ERRORS.values(),
                         ids=TIME_ERRORS.keys())
def test_bad_timestamps_skip_the_row_with_its_line(tmp_path: Path, spec: dict[str, Any],
                                                   good: str, bad: str, reason: str) -> None:
    mapping = base()
    mapping["fields"]["occurred_at"] = spec
    events, report = run(tmp_path, [f"1,{good},C1,A,1,1", f"2,{bad},C1,A,1,1"], mapping)
    assert [e["order_id"] for e in events] == ["1"]
    (key,) = report.skipped
    assert key.startswith("line 3: ")
    assert "occurred_at" in key
    assert reason in key


# --- templates, constants and modifiers ----------------------------------------------


def test_templates_constants_and_modifiers(tmp_path: Path) -> None:
    mapping = base()
    mapping["fields"].update({
        "event_id": {"template": "crm-{Invoice}/{Sku}-{{x}}"},
        "customer_id": {"column": "Customer", "remove_suffix": ".0"},
        "rep_id": {"column": "Rep", "case": "lower", "default": "house"},
        "currency": {"column": "Cur", "case": "upper", "default": "GBP"},
    })
    mapping["lines"].update({
        "product_id": {"column": "Sku", "case": "upper"},
        "list_price": {"value": 9.5},
        "category": {"column": "Cat", "map": {"HW": "hardware", "SW": "software"}},
    })
    header = f"{HEADER},Rep,Cur,Cat"
    rows = ["1,2024-01-01 10:00,17850.0,ab-1,2,1.5,J.Doe,eur,HW",
            "2,2024-01-01 11:00,17851,cd-2,1,1,,,Services"]
    events, report = run(tmp_path, rows, mapping, header)
    assert report.skipped == Counter()
    first, second = events
    assert first["event_id"] == "crm-1/ab-1-{x}"  # raw cells, no modifiers
    assert (first["customer_id"], first["rep_id"], first["currency"]) == ("17850", "j.doe",
                                                                          "EUR")
    assert first["lines"] == [{"product_id": "AB-1", "quantity": 2.0, "unit_price": 1.5,
                               "list_price": 9.5, "category": "hardware"}]
    assert (second["rep_id"], second["currency"]) == ("house", "GBP")
    assert second["lines"][0]["category"] == "Services"  # unmapped values pass through


def test_empty_optional_cell_leaves_the_field_out(tmp_path: Path) -> None:
    mapping = base()
    mapping["fields"]["rep_id"] = "Rep"
    mapping["lines"]["unit_cost"] = "Cost"
    events, _ = run(tmp_path, ["1,2024-01-01 10:00,C1,A,1,1,,"], mapping,
                    f"{HEADER},Rep,Cost")
    assert "rep_id" not in events[0]
    assert "unit_cost" not in events[0]["lines"][0]


def test_empty_cell_in_a_template_skips_the_row(tmp_path: Path) -> None:
    mapping = base()
    mapping["fields"]["event_id"] = {"template": "crm-{Invoice}-{Customer}"}
    _, report = run(tmp_path, ["1,2024-01-01 10:00,,A,1,1"], mapping)
    assert list(report.skipped) == [
        "line 2: fields.event_id: column 'Customer' used by the template is empty"]


NUMBER_CASES = {
    "plain": ({}, "1234.5", 1234.5),
    "thousands comma": ({"thousands": ","}, "1,234.5", 1234.5),
    "european": ({"decimal": ",", "thousands": "."}, "1.234,5", 1234.5),
    "space thousands": ({"decimal": ",", "thousands": " "}, "1 234,5", 1234.5),
    "exponent": ({}, "1.5e3", 1500.0),
}


@pytest.mark.parametrize(("numbers", "cell", "expected"), NUMBER_CASES.values(),
                         ids=NUMBER_CASES.keys())
def test_number_formats(tmp_path: Path, numbers: dict[str, str], cell: str,
                        expected: float) -> None:
    mapping = base(numbers=numbers, csv={"delimiter": ";"})
    events, _ = run(tmp_path, [f"1;2024-01-01 10:00;C1;A;2;{cell}"], mapping,
                    HEADER.replace(",", ";"))
    assert events[0]["lines"][0]["unit_price"] == expected


# --- skip rules ---------------------------------------------------------------------

SKIP_ROWS = ["1,2024-01-01 10:00,C1,A,2,1", "2,2024-01-01 10:00,,A,2,1",
             "A3,2024-01-01 10:00,C2,A,2,1", "4,2024-01-01 10:00,C3,POST,1,5",
             "5,2024-01-01 10:00,C3,A,-1,1", "C6,2024-01-01 10:00,C3,A,3,1"]
SKIP_CASES = {
    "empty with reason": (
        [{"column": "Customer", "empty": True, "reason": "no customer"}],
        {"no customer": 1}),
    "startswith with default reason": (
        [{"column": "Invoice", "startswith": ["A", "B"]}],
        {"Invoice starts with 'A' or 'B'": 1}),
    "equals": ([{"column": "Sku", "equals": "POST", "reason": "postage"}], {"postage": 1}),
    "regex, negated": ([{"column": "Invoice", "matches": r"C?\d+", "not": True}],
                       {"not Invoice matches 'C?\\\\d+'": 1}),
    "numeric": ([{"column": "Qty", "below": 0}], {"Qty < 0": 1}),
    "all/any": ([{"reason": "sign does not match invoice", "any": [
        {"all": [{"column": "Invoice", "startswith": "C"}, {"column": "Qty", "at_least": 0}]},
        {"all": [{"column": "Invoice", "startswith": "C", "not": True},
                 {"column": "Qty", "at_most": 0}]}]}],
        {"sign does not match invoice": 2}),
    "first matching rule counts": (
        [{"column": "Customer", "empty": True, "reason": "r1"},
         {"column": "Customer", "equals": ["", "C3"], "reason": "r2"}],
        {"r1": 1, "r2": 3}),
    "not empty": ([{"column": "Customer", "empty": False, "reason": "all"}], {"all": 5}),
}


@pytest.mark.parametrize(("rules", "expected"), SKIP_CASES.values(), ids=SKIP_CASES.keys())
def test_skip_rules_are_counted_with_reasons(tmp_path: Path, rules: list[Any],
                                             expected: dict[str, int]) -> None:
    events, report = run(tmp_path, SKIP_ROWS, base(skip_when=rules))
    skip_counts = {k: v for k, v in report.skipped.items() if not k.startswith("line ")}
    assert skip_counts == expected
    converted = sum(len(e["lines"]) for e in events)
    assert converted + sum(report.skipped.values()) == report.rows == len(SKIP_ROWS)


def test_numeric_test_on_a_non_number_does_not_skip(tmp_path: Path) -> None:
    _, report = run(tmp_path, ["1,2024-01-01 10:00,C1,A,lots,1"],
                    base(skip_when=[{"column": "Qty", "below": 0}]))
    (key,) = report.skipped
    assert key.startswith("line 2: lines.quantity (column 'Qty'): 'lots' is not a number")


# --- rows that cannot be converted ---------------------------------------------------

BAD_ROWS = {
    "quantity not a number": ("1,2024-01-01 10:00,C1,A,two,1",
                              "lines.quantity (column 'Qty'): 'two' is not a number"),
    "thousands separator not configured": ("1,2024-01-01 10:00,C1,A,2,\"1,000\"",
                                           'set numbers.thousands: ","'),
    "infinite price": ("1,2024-01-01 10:00,C1,A,2,inf", "'inf' is not a finite number"),
    "negative quantity in an order": ("1,2024-01-01 10:00,C1,A,-2,1",
                                      "lines.quantity (column 'Qty'): Input should be greater "
                                      "than 0, got -2.0"),
    "zero quantity in a return": ("C1,2024-01-01 10:00,C1,A,0,1",
                                  "lines.quantity (column 'Qty'): Input should be greater"),
    "negative price": ("1,2024-01-01 10:00,C1,A,1,-1",
                       "lines.unit_price (column 'Price'): Input should be greater than or "
                       "equal to 0"),
    "empty required customer": ("1,2024-01-01 10:00,,A,1,1",
                                "customer_id: column 'Customer' is empty"),
    "empty product": ("1,2024-01-01 10:00,C1,,1,1",
                      "lines.product_id: column 'Sku' is empty"),
    "too many fields": ("1,2024-01-01 10:00,C1,A,1,1,extra", "7 fields, the header has 6"),
    "too few fields": ("1,2024-01-01 10:00,C1", "3 fields, the header has 6"),
    "bad date": ("1,01.01.2024,C1,A,1,1", "occurred_at (column 'Date'): '01.01.2024' does "
                                          "not match the format '%Y-%m-%d %H:%M'"),
}


@pytest.mark.parametrize(("row", "reason"), BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_a_bad_row_is_counted_with_its_line_not_fatal(tmp_path: Path, row: str,
                                                      reason: str) -> None:
    rows = ["9,2024-01-01 09:00,C1,A,1,1", "", row, "10,2024-01-01 11:00,C1,A,1,1"]
    events, report = run(tmp_path, rows)
    assert [e["order_id"] for e in events] == ["9", "10"]
    (key,) = report.skipped
    assert key.startswith("line 4: ")  # header is line 1, a blank line 3
    assert reason in key
    assert report.rows == 3


def test_row_spanning_lines_is_numbered_by_its_first_line(tmp_path: Path) -> None:
    rows = (f'{HEADER},Note\n1,2024-01-01 10:00,C1,A,1,1,"two\nlines"\n'
            "2,2024-01-01 11:00,C1,A,x,1,\n")
    events, report = run(tmp_path, rows)
    assert [e["order_id"] for e in events] == ["1"]
    (key,) = report.skipped
    assert key.startswith("line 4: ")


def test_rows_disagreeing_with_their_group_are_skipped(tmp_path: Path) -> None:
    rows = ["1,2024-01-01 10:00,C1,A,1,1", "1,2024-01-01 10:00,C2,B,1,1",
            "C5,2024-01-01 10:00,C1,A,-1,1", "1,2024-01-01 10:00,C1,D,1,1"]
    events, report = run(tmp_path, rows)
    assert summary(events) == [("order", "1", [("A", 1.0, 1.0), ("D", 1.0, 1.0)]),
                               ("return", "C5", [("A", 1.0, 1.0)])]
    assert list(report.skipped) == [
        "line 3: customer_id 'C2' differs from 'C1' in the group Invoice='1' (line 2)"]


def test_mixed_order_and_return_rows_in_one_group_are_reported(tmp_path: Path) -> None:
    mapping = BASE.replace('{column: Invoice, startswith: "C"}', "{column: Qty, below: 0}")
    events, report = run(tmp_path, ["1,2024-01-01 10:00,C1,A,1,1",
                                    "1,2024-01-01 10:00,C1,B,-1,1"], mapping)
    assert summary(events) == [("order", "1", [("A", 1.0, 1.0)])]
    assert list(report.skipped) == [
        "line 3: a return row in the group Invoice='1' (line 2), which is an order"]


def test_duplicate_event_ids_are_reported(tmp_path: Path) -> None:
    mapping = BASE.replace("group_by: Invoice\n", "")
    events, report = run(tmp_path, ["1,2024-01-01 10:00,C1,A,1,1",
                                    "1,2024-01-01 10:00,C1,B,1,1"], mapping)
    assert len(events) == 1
    assert list(report.skipped) == [
        "line 3: duplicate event_id 'crm-1' (already made from line 2)"]


def test_only_the_first_bad_rows_are_listed_by_line(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_mapping, "MAX_LISTED_ROWS", 2)
    rows = [f"{i},2024-01-01 10:00,C1,A,x,1" for i in range(5)]
    events, report = run(tmp_path, rows)
    assert events == []
    assert sum(report.skipped.values()) == 5
    assert [k.split(":")[0] for k in report.skipped if k.startswith("line ")] == ["line 2",
                                                                                  "line 3"]
    assert report.skipped[
        "more rows that could not be converted (only the first 2 are listed by line)"] == 3


def test_unreadable_csv_record_is_counted(tmp_path: Path) -> None:
    limit = csv_mapping.csv.field_size_limit()
    rows = ["1,2024-01-01 10:00,C1,A,1,1", f"2,2024-01-01 10:00,C1,{'x' * (limit + 1)},1,1",
            "3,2024-01-01 10:00,C1,A,1,1"]
    events, report = run(tmp_path, rows)
    assert [e["order_id"] for e in events] == ["1", "3"]
    (key,) = report.skipped
    assert key.startswith("line 3: unreadable CSV: field larger than field limit")


def test_gzip_bom_blank_lines_and_padded_header(tmp_path: Path) -> None:
    _, mapping_path = write(tmp_path, [], BASE)
    gz = tmp_path / "export.csv.gz"
    text = "\n\n Invoice , Date,Customer,Sku,Qty,Price\n\n1,2024-01-01 10:00, C1 ,A,1,1\n"
    gz.write_bytes(gzip.compress(b"\xef\xbb\xbf" + text.encode()))
    report = ImportReport()
    events = list(convert_with_mapping(gz, mapping_path, report))
    assert [(e["order_id"], e["customer_id"]) for e in events] == [("1", "C1")]
    assert report.rows == 1


def test_empty_csv_gives_no_events(tmp_path: Path) -> None:
    events, report = run(tmp_path, "", BASE)
    assert events == []
    assert report.rows == 0


# --- other event types --------------------------------------------------------------


def test_interactions_with_mapped_channel_and_sentiment(tmp_path: Path) -> None:
    mapping = {
        "type": "interaction",
        "fields": {
            "event_id": {"template": "ticket-{Id}"},
            "occurred_at": {"column": "Opened", "timezone": "UTC"},
            "customer_id": "Account",
            "channel": {"column": "Kind", "case": "lower",
                        "map": {"phone": "call", "visit": "meeting"}},
            "sentiment": "Score",
            "summary": "Subject",
        },
    }
    rows = ["T1,2024-02-01T10:00,ACME,Phone,-0.5,Printer broken",
            "T2,2024-02-01T09:00,ACME,EMAIL,,Invoice question",
            "T3,2024-02-01T11:00,ACME,Fax,0.1,Old school",
            "T4,2024-02-01T12:00,ACME,visit,1.5,Too happy"]
    events, report = run(tmp_path, rows, mapping, "Id,Opened,Account,Kind,Score,Subject")
    assert [(e["event_id"], e["channel"], e.get("sentiment")) for e in events] == [
        ("ticket-T2", "email", None), ("ticket-T1", "call", -0.5)]
    reasons = sorted(report.skipped)
    assert reasons[0].startswith("line 4: channel (column 'Kind'): Input should be 'call'")
    assert reasons[1].startswith("line 5: sentiment (column 'Score'): Input should be less")
    assert report.orders == report.returns == 0


def test_customers_with_attributes_and_products_with_lists(tmp_path: Path) -> None:
    customers = {
        "type": "customer",
        "fields": {"event_id": {"template": "cust-{Id}"},
                   "occurred_at": {"value": "2024-01-01T00:00:00Z"},
                   "customer_id": "Id", "name": "Name",
                   "attributes": {"columns": {"industry": "Industry", "size": "Employees"}}},
    }
    events, report = run(tmp_path, ["1,Acme,Retail,250", "2,Beta,,"], customers,
                         "Id,Name,Industry,Employees")
    assert [e["attributes"] for e in events] == [{"industry": "Retail", "size": "250"}, {}]
    assert report.customers == 2

    products = {
        "type": "product",
        "group_by": "Sku",
        "numbers": {"thousands": ","},
        "fields": {"event_id": {"template": "prod-{Sku}"},
                   "occurred_at": {"value": "2024-01-01T00:00:00Z"},
                   "product_id": "Sku", "list_price": "Price",
                   "upgrade_to": {"column": "Upgrades", "split": ";"},
                   "discontinued": "Retired"},
    }
    events, report = run(tmp_path, ['GTX,"1,096.00",GTX-PRO; GTX-PLUS,no',
                                    "OLD,5,,Yes", "GTX,\"1,096.00\",GTX-PRO; GTX-PLUS,no",
                                    "BAD,1,,perhaps"], products,
                         "Sku,Price,Upgrades,Retired")
    assert [(e["product_id"], e["list_price"], e.get("upgrade_to"), e["discontinued"])
            for e in events] == [("GTX", 1096.0, ["GTX-PRO", "GTX-PLUS"], False),
                                 ("OLD", 5.0, None, True)]
    assert report.products == 2
    (key,) = report.skipped
    assert key == "line 5: fields.discontinued (column 'Retired'): 'perhaps' is not a yes/no value"


def test_opportunities(tmp_path: Path) -> None:
    mapping = {
        "type": "opportunity",
        "numbers": {"thousands": ","},
        "fields": {"event_id": {"template": "opp-{Id}-{Stage}"},
                   "occurred_at": {"column": "Changed", "format": "%Y-%m-%d",
                                   "timezone": "America/Chicago"},
                   "opportunity_id": "Id", "customer_id": "Account", "rep_id": "Agent",
                   "stage": {"column": "Stage", "case": "lower",
                             "map": {"engaging": "engaging", "closed won": "won"}},
                   "amount": "Value"},
    }
    events, _ = run(tmp_path, ['O1,2017-03-01,Acme,Anna,Closed Won,"4,500"',
                               "O1,2017-01-01,Acme,Anna,Engaging,"],
                    mapping, "Id,Changed,Account,Agent,Stage,Value")
    assert [(e["stage"], e.get("amount"), e["occurred_at"]) for e in events] == [
        ("engaging", None, "2017-01-01T00:00:00-06:00"),
        ("won", 4500.0, "2017-03-01T00:00:00-06:00")]


# --- bad mapping files --------------------------------------------------------------


def edit(path: str, value: Any) -> dict[str, Any]:
    """BASE with the value at a dotted path set (None deletes it)."""
    data = base()
    *parents, last = path.split(".")
    target = data
    for part in parents:
        target = target[part]
    if value is None:
        del target[last]
    else:
        target[last] = value
    return data


BAD_MAPPINGS: dict[str, tuple[dict[str, Any] | str, str]] = {
    "column not in header": (
        edit("fields.customer_id", "Cust"),
        "fields.customer_id: column 'Cust' not in CSV header (columns: Invoice, Date, "
        "Customer, Sku, Qty, Price)"),
    "template column not in header": (edit("fields.event_id", {"template": "x-{Nope}"}),
                                      "fields.event_id.template: column 'Nope' not in CSV"),
    "group_by column not in header": (edit("group_by", ["Invoice", "Store"]),
                                      "group_by[1]: column 'Store' not in CSV header"),
    "condition column not in header": (
        edit("type.return_when", {"column": "Kind", "equals": "R"}),
        "type.return_when.column: column 'Kind' not in CSV header"),
    "missing type": (edit("type", None), "type: required"),
    "unknown type": (edit("type", "refund"), "type: unknown event type 'refund'"),
    "type rule default": (edit("type.default", "interaction"), "type.default: must be order"),
    "unknown top-level key": (base(feilds={}), "feilds: unknown key"),
    "required field not mapped": (edit("fields.order_id", None),
                                  "fields.order_id: required for order and return events"),
    "field not in the model": (edit("fields.discount", "Price"),
                               "fields.discount: not a field of order and return events"),
    "lines missing": (base(lines=None), "lines: required for order and return events"),
    "line field required": (edit("lines.unit_price", None),
                            "lines.unit_price: required for order lines"),
    "lines on interactions": (
        {"type": "interaction", "fields": {"event_id": {"template": "{Invoice}"},
                                           "occurred_at": "Date", "customer_id": "Customer",
                                           "channel": {"value": "call"}},
         "lines": {"product_id": "Sku"}},
        "lines: only orders and returns have lines"),
    "unknown time zone": (edit("fields.occurred_at.timezone", "Mars/Olympus"),
                          "fields.occurred_at.timezone: unknown time zone 'Mars/Olympus'"),
    "format without zone": (edit("fields.occurred_at.timezone", None),
                            "fields.occurred_at: the format has no %z, so a `timezone` is "
                            "required"),
    "format on a non-timestamp": (edit("fields.customer_id", {"column": "Customer",
                                                               "format": "%Y"}),
                                  "fields.customer_id.format: only applies to timestamps"),
    "two sources": (edit("fields.customer_id", {"column": "Customer", "value": "x"}),
                    "fields.customer_id: needs exactly one of column, template, value"),
    "unknown spec key": (edit("fields.customer_id", {"colum": "Customer"}),
                         "fields.customer_id.colum: unknown key"),
    "template without columns": (edit("fields.event_id", {"template": "fixed"}),
                                 "fields.event_id.template: the template uses no {column}"),
    "unbalanced template": (edit("fields.event_id", {"template": "crm-{Invoice"}),
                            "fields.event_id.template: unbalanced brace"),
    "bad case": (edit("lines.product_id", {"column": "Sku", "case": "title"}),
                 "lines.product_id.case: must be upper or lower"),
    "condition with two tests": (
        base(skip_when=[{"column": "Qty", "below": 0, "empty": True}]),
        "skip_when[0]: needs exactly one test"),
    "bad regex": (base(skip_when=[{"column": "Sku", "matches": "("}]),
                  "skip_when[0].matches: not a valid regular expression"),
    "YAML boolean": ("skip_when:\n  - {column: Customer, equals: NO}\n" + BASE,
                     "skip_when[0].equals: got the YAML boolean False; quote the text"),
    "numeric test with text": (base(skip_when=[{"column": "Qty", "below": "zero"}]),
                               "skip_when[0].below: must be a number"),
    "nested condition": (
        base(skip_when=[{"any": [{"column": "Qty", "below": 0}, {"column": "Qty"}]}]),
        "skip_when[0].any[1]: needs exactly one test"),
    "skip_when not a list": (base(skip_when={"column": "Qty"}),
                             "skip_when: must be a list of conditions"),
    "thousands equals decimal": (base(numbers={"decimal": ",", "thousands": ","}),
                                 "numbers.thousands: must differ"),
    "bad delimiter": (base(csv={"delimiter": ";;"}), "csv.delimiter: must be one character"),
    "bad encoding": (base(csv={"encoding": "klingon-8"}), "csv.encoding: unknown encoding"),
    "top level not a mapping": ("- just\n- a list\n", "the top level must be a mapping"),
    "not YAML": ("type: [order\n", "not valid YAML"),
}


@pytest.mark.parametrize(("mapping", "message"), BAD_MAPPINGS.values(),
                         ids=BAD_MAPPINGS.keys())
def test_bad_mapping_errors_name_file_and_key(tmp_path: Path, mapping: Any,
                                              message: str) -> None:
    csv_path, mapping_path = write(tmp_path, ["1,2024-01-01 10:00,C1,A,1,1"], mapping)
    with pytest.raises(MappingError) as info:
        convert_with_mapping(csv_path, mapping_path)  # raised at once, not when iterated
    assert str(info.value).startswith(f"{mapping_path}: ")
    assert message in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_missing_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"nope\.yaml: cannot read"):
        load_mapping(tmp_path / "nope.yaml")


def test_duplicate_header_column_used_by_the_mapping(tmp_path: Path) -> None:
    csv_path, mapping_path = write(tmp_path, ["1,2024-01-01 10:00,C1,A,1,1,2"], BASE,
                                   header=f"{HEADER},Qty")
    with pytest.raises(MappingError, match=r"lines\.quantity: column 'Qty' appears 2 times"):
        convert_with_mapping(csv_path, mapping_path)


# --- the shipped mapping files ------------------------------------------------------


@pytest.mark.parametrize("path", sorted(MAPPINGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_mappings_load(path: Path) -> None:
    mapping = load_mapping(path)
    assert mapping.fields and mapping.transactional


def test_crm_orders_example(tmp_path: Path) -> None:
    report = ImportReport()
    events = list(convert_with_mapping(DATA / "crm_orders_example.csv",
                                       MAPPINGS / "crm_orders_example.yaml", report))
    for event in events:
        parse_event(event)
    assert [(e["event_id"], e["type"], e["occurred_at"], e["currency"]) for e in events] == [
        ("crm-SO-1005", "order", "2024-03-01T08:00:00-05:00", "USD"),
        ("crm-SO-1001", "order", "2024-03-04T09:15:00-05:00", "USD"),
        ("crm-SO-1002", "order", "2024-03-05T14:30:00+01:00", "EUR"),
        ("crm-CN-2001", "return", "2024-03-06T11:00:00-05:00", "USD"),
    ]
    assert events[1]["rep_id"] == "j.doe@example.com"
    assert events[1]["lines"][0] == {"product_id": "GTX-BASIC", "quantity": 10.0,
                                     "unit_price": 495.0, "list_price": 550.0,
                                     "unit_cost": 310.0, "category": "GTX"}
    assert events[2]["lines"][0]["list_price"] == 4821.0
    assert events[3]["lines"][0]["quantity"] == 1.0
    assert dict(report.skipped) == {"order not booked (status Cancelled or Draft)": 1,
                                    "no account on the order line": 1}
    assert (report.rows, report.orders, report.returns) == (7, 3, 1)


EDGE_ROWS = """\
536900,85123a,lower case code,6,2011-07-01 08:26:00,2.55,17850.0,United Kingdom
536901,22086,guest checkout,80,2011-07-01 09:00:00,2.55,,United Kingdom
536902,22632,stock correction,-6,2011-07-01 09:01:00,1.85,17850,United Kingdom
C536903,22556,positive cancellation,12,2011-07-01 09:42:00,1.65,14527,United Kingdom
C536904,22557,real cancellation,-3,2011-07-01 09:43:00,1.65,14527,United Kingdom
A563185,B,Adjust bad debt,1,2011-08-12 14:50:00,11062.06,14527,United Kingdom
536905,22139,negative price,1,2011-07-01 09:45:00,-4.95,12345,Japan
536906,22139,zero quantity,0,2011-07-01 09:46:00,4.95,12345,Japan
536907,22139,"comma, in description",2,2011-07-01 09:47:00,4.95,12345,Japan
"""


def test_online_retail_mapping_matches_the_dedicated_importer(tmp_path: Path) -> None:
    sample = ROOT / "sia" / "data" / "online_retail_sample.csv.gz"
    with gzip.open(sample, "rt", encoding="utf-8", newline="") as handle:
        excerpt = "".join(islice(handle, 1500))
    path = tmp_path / "excerpt.csv"
    path.write_text(excerpt + EDGE_ROWS, encoding="utf-8")

    dedicated = ImportReport()
    expected = [e for e in convert(path, dedicated) if e["type"] in ("order", "return")]
    for event in expected:
        del event["rep_id"]  # synthetic enrichment of the dedicated importer only
    mapped = ImportReport()
    events = list(convert_with_mapping(path, MAPPINGS / "online_retail.yaml", mapped))

    assert events == expected
    assert {e["type"] for e in events} == {"order", "return"}
    assert (mapped.rows, mapped.orders, mapped.returns) == (dedicated.rows, dedicated.orders,
                                                            dedicated.returns)
    assert sum(mapped.skipped.values()) == sum(dedicated.skipped.values()) == 6
    for reason in ("no CustomerID (guest checkout)",
                   "stock correction (quantity sign does not match invoice)",
                   "negative unit price"):
        assert mapped.skipped[reason] == dedicated.skipped[reason] > 0
