"""Import any CSV export into canonical events, driven by a column-mapping YAML file.

A mapping file says which event type the rows are, which rows belong to one event, and
which column (or constant, or composition of columns) gives each event field. Example
(an order-lines export where one invoice spans several rows)::

    description: Order lines exported from the CRM      # free text, optional
    csv: {delimiter: ",", encoding: utf-8-sig}           # optional; these are the defaults
    numbers: {decimal: ".", thousands: ","}              # optional; default: no thousands sep.
    type:                                                # or a fixed type, e.g. `type: order`
      default: order
      return_when: {column: InvoiceNo, startswith: "C"}
    group_by: InvoiceNo                                  # or a list of columns
    skip_when:
      - {column: CustomerID, empty: true, reason: "no CustomerID (guest checkout)"}
    fields:
      event_id: {template: "crm-{InvoiceNo}"}
      occurred_at: {column: InvoiceDate, format: "%Y-%m-%d %H:%M:%S", timezone: Europe/London}
      customer_id: {column: CustomerID, remove_suffix: ".0"}
      order_id: InvoiceNo
      currency: {value: GBP}
    lines:
      product_id: {column: StockCode, case: upper}
      quantity: Quantity
      unit_price: UnitPrice

Top-level keys (anything else is an error, so typos do not pass unnoticed):

`type`
    One of order, return, interaction, opportunity, customer, product, rep; or, for
    transactions, a rule ``{default: order, return_when: CONDITION}``: a row is a return when
    the condition holds, else an order (e.g. ``{column: Quantity, below: 0}``).
`group_by`
    Column or list of columns. Rows with equal values form one event (not necessarily
    adjacent rows); for orders and returns each row adds one of the event's `lines`. The
    rows of a group must agree on every event field except `occurred_at`, which is the
    earliest of the group; a row that disagrees (another customer, or a return row in an
    order) is skipped and reported. Without `group_by` every row is one event.
`fields`
    Event field -> value spec. Every required field of the event type must be mapped;
    only fields of the type are accepted (`type`, `lines` and `schema_version` are set by
    the importer).
`lines`
    Order-line field -> value spec (product_id, quantity and unit_price are required;
    list_price, unit_cost and category are optional). Only for orders and returns.
    Quantities of returns are made positive (abs).
`skip_when`
    List of conditions; a row matching one is skipped and counted in `report.skipped`
    under the rule's `reason` (default: a description of the condition).
`numbers`
    How numbers are written: `decimal` (default ".") and `thousands` (default none). A
    number is trimmed, the thousands separator removed, the decimal mark made "." and then
    read; NaN and infinities are refused.
`csv`
    `delimiter` (default ",") and `encoding` (default "utf-8-sig", which also reads plain
    UTF-8). Undecodable bytes become U+FFFD rather than stopping the import. Files ending in
    `.gz` are gunzipped.
`description`
    Free text.

A value spec is one of:

- ``Column`` (a plain string): the cell of that column, trimmed;
- ``{column: Column, ...modifiers}``;
- ``{template: "crm-{InvoiceNo}-{Line No}"}``: columns in braces are replaced by their
  trimmed cells as they are (modifiers of other fields do not apply); ``{{`` and ``}}``
  give literal braces; a referenced cell must not be empty;
- ``{value: GBP}``: a constant;
- ``{columns: {key: Column, ...}}`` or ``{columns: [Column, ...]}``: only for the
  `attributes` mapping of customers; empty cells are left out.

Modifiers of column and template specs, applied in this order: `remove_suffix` (e.g. ".0"
of ids exported as floats), `case` (upper or lower), `default` (used when the cell is
empty), `map` (``{raw: value}``; values not listed pass through unchanged, e.g. to map
"Closed Won" to the stage "won"). Then the text is converted to the field's kind:
numbers as above; booleans from true/false, yes/no, y/n, t/f, 1/0; lists (upgrade_to,
substitutes) split on `split` (default ","); timestamps with `format` (a strptime format,
or a list of formats tried in order; default ISO 8601) and `timezone` (an IANA zone name).
A timestamp without a zone is localised to `timezone` (``replace(tzinfo=...)``: on the
repeated hour at the end of summer time the first occurrence is taken); one that carries
its own offset keeps it. If no `format` has a %z, `timezone` is required; with ISO
timestamps and no `timezone`, rows whose time has no zone are skipped and reported. An
empty cell leaves an optional field out (and makes a required one fail).

A condition is ``{column: C, TEST: ARG}`` with exactly one test, optionally ``not: true``:

- ``empty: true`` (the cell is blank; ``empty: false``: it is not);
- ``equals: X`` or ``equals: [X, Y]``; ``startswith: X`` or a list; ``matches: REGEX``
  (the whole cell must match);
- ``below: N``, ``above: N``, ``at_most: N``, ``at_least: N``: numeric comparisons; a
  cell that is not a number satisfies none of them (before `not` is applied);

or ``{all: [CONDITION, ...]}`` / ``{any: [CONDITION, ...]}`` (again with optional `not`).
Write texts that YAML would read as booleans or numbers in quotes ("NO", "007").

Every problem with the mapping raises `MappingError` naming the mapping file and the key,
including columns missing from the CSV header. Problems with rows never stop the import:
a row that cannot be converted is skipped and counted in `report.skipped` under a reason
that names its CSV line (the header is line 1). Only the first `MAX_LISTED_ROWS` such rows
get a reason of their own; further ones are counted under one summary reason. Given a
`rejects` sink (sia.events.reader.RejectSink), every such row is also kept there, as a
Reject with the CSV file, line, reason and the row (re-written as one CSV line), as
`sia replay` keeps bad records; rows left out by `skip_when` are not rejects. Two groups
or rows giving the same event_id are reported too (the later one is skipped), as an event
id is processed only once downstream.

Events are yielded sorted by occurred_at (stable: ties keep the order of their first row),
as dicts that `sia.events.parse_event` accepts, with occurred_at in ISO 8601.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import operator
import re
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Annotated, Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ValidationError

from sia.config import ConfigError, load_yaml
from sia.events.models import (
    Customer,
    Interaction,
    Opportunity,
    Order,
    OrderLine,
    Product,
    Rep,
    Return,
    parse_event,
)
from sia.events.reader import Reject, RejectSink
from sia.importers.online_retail import ImportReport

MAX_LISTED_ROWS = 100
"""Rows that could not be converted beyond this many are counted under one reason."""

MODELS: dict[str, type[BaseModel]] = {
    "order": Order,
    "return": Return,
    "interaction": Interaction,
    "opportunity": Opportunity,
    "customer": Customer,
    "product": Product,
    "rep": Rep,
}
TRANSACTIONS = ("order", "return")
SET_BY_IMPORTER = {"type", "lines", "schema_version"}
TOP_KEYS = {"description", "csv", "numbers", "type", "group_by", "skip_when", "fields", "lines"}
SPEC_SOURCES = ("column", "template", "value", "columns")
SPEC_MODIFIERS = ("remove_suffix", "case", "default", "map", "split", "format", "timezone")
TESTS = ("empty", "equals", "startswith", "matches", "below", "above", "at_most", "at_least")
NUMERIC_TESTS = {"below": "<", "above": ">", "at_most": "<=", "at_least": ">="}
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "below": operator.lt, "above": operator.gt, "at_most": operator.le, "at_least": operator.ge}
TRUE = {"true", "yes", "y", "t", "1"}
FALSE = {"false", "no", "n", "f", "0"}

Kind = Literal["text", "number", "bool", "timestamp", "list", "dict"]


class MappingError(ConfigError):
    """A mapping file is malformed, or names a column the CSV does not have."""


class _RowError(ValueError):
    """A row cannot be converted; the message says why (without the line number)."""


class _Absent:
    """Marks a value that is left out of the event (an empty cell)."""


ABSENT = _Absent()


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _kind(annotation: Any) -> Kind:
    """What kind of value a model field holds, from its type annotation."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _kind(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        inner = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _kind(inner[0]) if len(inner) == 1 else "text"
    if origin is list:
        return "list"
    if origin is dict:
        return "dict"
    if annotation is bool:
        return "bool"
    if annotation in (float, int):
        return "number"
    if annotation in (AwareDatetime, datetime):
        return "timestamp"
    return "text"


def _field_kinds(model: type[BaseModel]) -> dict[str, Kind]:
    return {name: _kind(info.annotation) for name, info in model.model_fields.items()
            if name not in SET_BY_IMPORTER}


def _required(model: type[BaseModel]) -> list[str]:
    return [name for name, info in model.model_fields.items()
            if info.is_required() and name not in SET_BY_IMPORTER]


@dataclass(frozen=True)
class Numbers:
    """How the CSV writes numbers."""

    decimal: str = "."
    thousands: str = ""

    def parse(self, text: str) -> float:
        """A finite number from a cell, else _RowError."""
        cleaned = text.strip()
        if self.thousands:
            cleaned = cleaned.replace(self.thousands, "")
        if self.decimal != ".":
            cleaned = cleaned.replace(self.decimal, ".")
        try:
            number = float(cleaned)
        except ValueError:
            hint = ""
            if not self.thousands and "," in cleaned and self.decimal != ",":
                hint = ' (set numbers.thousands: "," if it uses thousands separators)'
            raise _RowError(f"{text!r} is not a number{hint}") from None
        if not math.isfinite(number):
            raise _RowError(f"{text!r} is not a finite number")
        return number

    def maybe(self, text: str) -> float | None:
        """The number in a cell, or None when it holds none."""
        try:
            return self.parse(text)
        except _RowError:
            return None


@dataclass(frozen=True)
class Condition:
    """A test of one row (see the module docstring for the syntax)."""

    test: str
    column: str | None = None
    arg: Any = None
    negate: bool = False
    parts: tuple[Condition, ...] = ()

    def holds(self, row: dict[str, str], numbers: Numbers) -> bool:
        """Whether the row satisfies the condition."""
        return self._raw(row, numbers) != self.negate

    def _raw(self, row: dict[str, str], numbers: Numbers) -> bool:
        if self.test == "all":
            return all(part.holds(row, numbers) for part in self.parts)
        if self.test == "any":
            return any(part.holds(row, numbers) for part in self.parts)
        assert self.column is not None
        cell = row[self.column]
        if self.test == "empty":
            return (cell == "") == bool(self.arg)
        if self.test == "equals":
            return cell in self.arg
        if self.test == "startswith":
            return cell.startswith(tuple(self.arg))
        if self.test == "matches":
            return self.arg.fullmatch(cell) is not None
        number = numbers.maybe(cell)
        if number is None:
            return False
        return COMPARE[self.test](number, float(self.arg))

    def describe(self) -> str:
        """The condition in words, e.g. "InvoiceNo starts with 'C'"."""
        if self.test in ("all", "any"):
            joiner = " and " if self.test == "all" else " or "
            text = "(" + joiner.join(part.describe() for part in self.parts) + ")"
        elif self.test == "empty":
            text = f"{self.column} is {'empty' if self.arg else 'not empty'}"
        elif self.test == "equals":
            text = f"{self.column} is " + " or ".join(repr(a) for a in self.arg)
        elif self.test == "startswith":
            text = f"{self.column} starts with " + " or ".join(repr(a) for a in self.arg)
        elif self.test == "matches":
            text = f"{self.column} matches {self.arg.pattern!r}"
        else:
            text = f"{self.column} {NUMERIC_TESTS[self.test]} {self.arg}"
        return f"not {text}" if self.negate else text


@dataclass(frozen=True)
class SkipRule:
    """Rows matching `when` are skipped and counted under `reason`."""

    when: Condition
    reason: str


@dataclass(frozen=True)
class ValueSpec:
    """How one event or line field is read from a row."""

    key: str
    kind: Kind
    column: str | None = None
    template: tuple[tuple[str, bool], ...] | None = None
    constant: Any = ABSENT
    columns: tuple[tuple[str, str], ...] = ()
    remove_suffix: str | None = None
    case: str | None = None
    default: str | None = None
    value_map: tuple[tuple[str, Any], ...] = ()
    split: str = ","
    formats: tuple[str, ...] = ()
    zone: ZoneInfo | None = None

    def source(self) -> str:
        """Where the value comes from, for messages."""
        if self.column is not None:
            return f"column {self.column!r}"
        if self.template is not None:
            return "template " + repr("".join("{" + t + "}" if is_col else t
                                              for t, is_col in self.template))
        if self.columns:
            return "columns " + ", ".join(repr(c) for _, c in self.columns)
        return "constant"

    def read(self, row: dict[str, str], numbers: Numbers) -> Any:
        """The field's value from a row, ABSENT for an empty cell, or _RowError."""
        if self.constant is not ABSENT:
            return self.constant
        if self.columns:
            return {key: row[column] for key, column in self.columns if row[column]}
        if self.template is not None:
            pieces = []
            for text, is_column in self.template:
                if is_column and not row[text]:
                    raise _RowError(f"{self.key}: column {text!r} used by the template "
                                    "is empty")
                pieces.append(row[text] if is_column else text)
            text = "".join(pieces)
        else:
            assert self.column is not None
            text = row[self.column]
        if self.remove_suffix and text.endswith(self.remove_suffix):
            text = text[: -len(self.remove_suffix)]
        if self.case == "upper":
            text = text.upper()
        elif self.case == "lower":
            text = text.lower()
        if not text:
            if self.default is None:
                return ABSENT
            text = self.default
        for raw, mapped in self.value_map:
            if text == raw:
                return mapped
        try:
            return self._convert(text, numbers)
        except _RowError as exc:
            raise _RowError(f"{self.key} ({self.source()}): {exc}") from None

    def _convert(self, text: str, numbers: Numbers) -> Any:
        if self.kind == "number":
            return numbers.parse(text)
        if self.kind == "bool":
            if text.lower() in TRUE:
                return True
            if text.lower() in FALSE:
                return False
            raise _RowError(f"{text!r} is not a yes/no value")
        if self.kind == "list":
            return [piece.strip() for piece in text.split(self.split) if piece.strip()]
        if self.kind == "timestamp":
            return self._timestamp(text)
        return text

    def _timestamp(self, text: str) -> datetime:
        when: datetime | None = None
        if self.formats:
            for fmt in self.formats:
                try:
                    when = datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
            if when is None:
                raise _RowError(f"{text!r} does not match the format "
                                + " or ".join(repr(f) for f in self.formats))
        else:
            try:
                when = datetime.fromisoformat(text)
            except ValueError:
                raise _RowError(f"{text!r} is not an ISO 8601 timestamp (set `format`)") \
                    from None
        if when.tzinfo is None:
            if self.zone is None:
                raise _RowError(f"{text!r} has no time zone and the mapping gives no "
                                "`timezone`")
            when = when.replace(tzinfo=self.zone)
        return when


@dataclass(frozen=True)
class ColumnMapping:
    """A parsed, checked mapping file."""

    path: Path
    fixed_type: str | None
    return_when: Condition | None
    group_by: tuple[str, ...]
    fields: dict[str, ValueSpec]
    lines: dict[str, ValueSpec]
    skip_when: tuple[SkipRule, ...]
    numbers: Numbers
    delimiter: str
    encoding: str
    references: tuple[tuple[str, str], ...] = field(default=())
    """(key, column) for every column the mapping reads, to check against the header."""

    @property
    def transactional(self) -> bool:
        """Whether the rows become orders or returns (with lines)."""
        return self.fixed_type is None or self.fixed_type in TRANSACTIONS

    def type_of(self, row: dict[str, str]) -> str:
        """The event type of a row."""
        if self.fixed_type is not None:
            return self.fixed_type
        assert self.return_when is not None
        return "return" if self.return_when.holds(row, self.numbers) else "order"

    def check_header(self, header: list[str]) -> None:
        """MappingError for a referenced column the CSV header lacks or repeats."""
        listing = ", ".join(header)
        for key, column in self.references:
            count = header.count(column)
            if count == 0:
                raise MappingError(f"{self.path}: {key}: column {column!r} not in CSV header "
                                   f"(columns: {listing})")
            if count > 1:
                raise MappingError(f"{self.path}: {key}: column {column!r} appears {count} "
                                   f"times in the CSV header (columns: {listing})")


class _Parser:
    """Builds a ColumnMapping from YAML data, raising MappingError with file and key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.references: list[tuple[str, str]] = []

    def error(self, key: str, message: str) -> MappingError:
        return MappingError(f"{self.path}: {key}: {message}")

    def column(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a column name, got {value!r}")
        self.references.append((key, value.strip()))
        return value.strip()

    def text(self, value: Any, key: str) -> str:
        """A text argument; YAML numbers are taken as written, booleans refused."""
        if isinstance(value, bool):
            raise self.error(key, f"got the YAML boolean {value}; quote the text, e.g. "
                                  '"NO" or "yes"')
        if isinstance(value, str | int | float):
            return str(value)
        raise self.error(key, f"must be a text, got {value!r}")

    def texts(self, value: Any, key: str) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise self.error(key, "must not be an empty list")
        return tuple(self.text(item, f"{key}[{i}]" if isinstance(value, list) else key)
                     for i, item in enumerate(items))

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(key, f"must be a mapping, got {value!r}")
        return value

    def unknown(self, data: dict[str, Any], allowed: set[str] | tuple[str, ...],
                key: str) -> None:
        extra = sorted(str(k) for k in data if k not in allowed)
        if extra:
            where = f"{key}." if key else ""
            raise self.error(f"{where}{extra[0]}",
                             f"unknown key (allowed: {', '.join(sorted(allowed))})")

    # --- conditions -----------------------------------------------------------------

    def condition(self, value: Any, key: str, extra: tuple[str, ...] = ()) -> Condition:
        data = self.mapping(value, key)
        negate = data.get("not", False)
        if not isinstance(negate, bool):
            raise self.error(f"{key}.not", "must be true or false")
        for compound in ("all", "any"):
            if compound in data:
                self.unknown(data, {compound, "not", *extra}, key)
                items = data[compound]
                if not isinstance(items, list) or not items:
                    raise self.error(f"{key}.{compound}", "must be a non-empty list of "
                                                          "conditions")
                parts = tuple(self.condition(item, f"{key}.{compound}[{i}]")
                              for i, item in enumerate(items))
                return Condition(compound, negate=negate, parts=parts)
        self.unknown(data, {"column", "not", *TESTS, *extra}, key)
        if "column" not in data:
            raise self.error(key, "needs `column` and a test ("
                                  + ", ".join(TESTS) + "), or `all`/`any`")
        column = self.column(data["column"], f"{key}.column")
        tests = [t for t in TESTS if t in data]
        if len(tests) != 1:
            raise self.error(key, "needs exactly one test of " + ", ".join(TESTS)
                             + (f", got {', '.join(tests)}" if tests else ""))
        test = tests[0]
        arg: Any = data[test]
        where = f"{key}.{test}"
        if test == "empty":
            if not isinstance(arg, bool):
                raise self.error(where, "must be true or false")
        elif test in ("equals", "startswith"):
            arg = self.texts(arg, where)
        elif test == "matches":
            try:
                arg = re.compile(self.text(arg, where))
            except re.error as exc:
                raise self.error(where, f"not a valid regular expression: {exc}") from None
        elif isinstance(arg, bool) or not isinstance(arg, int | float):
            raise self.error(where, f"must be a number, got {arg!r}")
        return Condition(test, column=column, arg=arg, negate=negate)

    # --- value specs ----------------------------------------------------------------

    def template(self, text: Any, key: str) -> tuple[tuple[str, bool], ...]:
        if not isinstance(text, str):
            raise self.error(key, f"must be a text, got {text!r}")
        pieces: list[tuple[str, bool]] = []
        position = 0
        for match in re.finditer(r"\{\{|\}\}|\{([^{}]*)\}", text):
            literal = text[position:match.start()]
            if "{" in literal or "}" in literal:
                raise self.error(key, f"unbalanced brace in {text!r} (write {{{{ or }}}} "
                                      "for a literal brace)")
            if literal:
                pieces.append((literal, False))
            token = match.group(0)
            if token in ("{{", "}}"):
                pieces.append((token[0], False))
            else:
                name = match.group(1).strip()
                if not name:
                    raise self.error(key, f"empty placeholder {{}} in {text!r}")
                self.references.append((key, name))
                pieces.append((name, True))
            position = match.end()
        tail = text[position:]
        if "{" in tail or "}" in tail:
            raise self.error(key, f"unbalanced brace in {text!r} (write {{{{ or }}}} for a "
                                  "literal brace)")
        if tail:
            pieces.append((tail, False))
        if not any(is_column for _, is_column in pieces):
            raise self.error(key, "the template uses no {column}; use `value:` for a "
                                  "constant")
        return tuple(pieces)

    def spec(self, value: Any, key: str, kind: Kind) -> ValueSpec:
        plain = isinstance(value, str)  # `field: Column`: errors name just the field
        if plain:
            value = {"column": value}
        data = self.mapping(value, key)
        self.unknown(data, (*SPEC_SOURCES, *SPEC_MODIFIERS), key)
        sources = [s for s in SPEC_SOURCES if s in data]
        if len(sources) != 1:
            raise self.error(key, "needs exactly one of column, template, value, columns"
                             + (f", got {', '.join(sources)}" if sources else ""))
        source = sources[0]
        modifiers = [m for m in SPEC_MODIFIERS if m in data]
        if source in ("value", "columns") and modifiers:
            raise self.error(f"{key}.{modifiers[0]}", f"does not apply to `{source}`")
        if ("format" in data or "timezone" in data) and kind != "timestamp":
            which = "format" if "format" in data else "timezone"
            raise self.error(f"{key}.{which}", "only applies to timestamps")
        if "split" in data and kind != "list":
            raise self.error(f"{key}.split", "only applies to list fields")
        if source == "value":
            constant = data["value"]
            if kind == "text":
                constant = self.text(constant, f"{key}.value")
            return ValueSpec(key, kind, constant=constant)
        if source == "columns":
            if kind != "dict":
                raise self.error(f"{key}.columns", "only applies to mapping fields "
                                                   "(attributes)")
            raw = data["columns"]
            if isinstance(raw, list):
                pairs = [(self.text(c, f"{key}.columns[{i}]"), c) for i, c in enumerate(raw)]
            else:
                pairs = [(str(k), c) for k, c in self.mapping(raw, f"{key}.columns").items()]
            if not pairs:
                raise self.error(f"{key}.columns", "must name at least one column")
            columns = tuple((name, self.column(c, f"{key}.columns.{name}"))
                            for name, c in pairs)
            return ValueSpec(key, kind, columns=columns)
        if kind == "dict":
            raise self.error(key, "a mapping field takes `columns:` or `value:`")
        column = template = None
        if source == "column":
            column = self.column(data["column"], key if plain else f"{key}.column")
        else:
            template = self.template(data["template"], f"{key}.template")
        case = data.get("case")
        if case is not None and case not in ("upper", "lower"):
            raise self.error(f"{key}.case", f"must be upper or lower, got {case!r}")
        suffix = data.get("remove_suffix")
        if suffix is not None:
            suffix = self.text(suffix, f"{key}.remove_suffix")
        default = data.get("default")
        if default is not None:
            default = self.text(default, f"{key}.default")
        value_map = tuple((self.text(raw, f"{key}.map"), mapped) for raw, mapped
                          in self.mapping(data.get("map", {}), f"{key}.map").items())
        split = data.get("split", ",")
        if not isinstance(split, str) or not split:
            raise self.error(f"{key}.split", "must be a non-empty text")
        formats: tuple[str, ...] = ()
        if "format" in data:
            formats = self.texts(data["format"], f"{key}.format")
        zone = None
        if "timezone" in data:
            name = self.text(data["timezone"], f"{key}.timezone")
            try:
                zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise self.error(f"{key}.timezone", f"unknown time zone {name!r} (use an "
                                                    "IANA name like Europe/London)") from None
        if formats and zone is None and not any("%z" in f for f in formats):
            raise self.error(key, "the format has no %z, so a `timezone` is required")
        return ValueSpec(key, kind, column=column, template=template, remove_suffix=suffix,
                         case=case, default=default, value_map=value_map, split=split,
                         formats=formats, zone=zone)

    def specs(self, value: Any, key: str, kinds: dict[str, Kind], required: list[str],
              what: str) -> dict[str, ValueSpec]:
        data = self.mapping(value, key)
        for name in data:
            if name not in kinds:
                raise self.error(f"{key}.{name}", f"not a field of {what} (fields: "
                                                  f"{', '.join(kinds)})")
        for name in required:
            if name not in data:
                raise self.error(f"{key}.{name}", f"required for {what} but not mapped")
        return {name: self.spec(spec, f"{key}.{name}", kinds[name])
                for name, spec in data.items()}

    # --- the whole file -------------------------------------------------------------

    def parse(self, data: dict[str, Any]) -> ColumnMapping:
        self.unknown(data, TOP_KEYS, "")
        fixed_type, return_when = self.event_type(data.get("type"))
        types_ = TRANSACTIONS if fixed_type is None else (fixed_type,)
        model = MODELS[types_[0]]
        what = " and ".join(types_) + " events"
        fields = self.specs(data.get("fields"), "fields", _field_kinds(model),
                            _required(model), what)
        transactional = types_[0] in TRANSACTIONS
        lines: dict[str, ValueSpec] = {}
        if transactional:
            if "lines" not in data:
                raise self.error("lines", f"required for {what} (product_id, quantity, "
                                          "unit_price)")
            lines = self.specs(data["lines"], "lines", _field_kinds(OrderLine),
                               _required(OrderLine), "order lines")
        elif "lines" in data:
            raise self.error("lines", f"only orders and returns have lines, not {what}")
        group_by = data.get("group_by")
        if group_by is None:
            group: tuple[str, ...] = ()
        elif isinstance(group_by, list) and group_by:
            group = tuple(self.column(c, f"group_by[{i}]") for i, c in enumerate(group_by))
        else:
            group = (self.column(group_by, "group_by"),)
        rules_data = data.get("skip_when") or []
        if not isinstance(rules_data, list):
            raise self.error("skip_when", "must be a list of conditions")
        rules = []
        for i, item in enumerate(rules_data):
            key = f"skip_when[{i}]"
            when = self.condition(item, key, extra=("reason",))
            reason = item.get("reason")
            if reason is None:
                reason = when.describe()
            elif not isinstance(reason, str) or not reason.strip():
                raise self.error(f"{key}.reason", "must be a non-empty text")
            rules.append(SkipRule(when, reason.strip()))
        numbers_data = self.mapping(data.get("numbers") or {}, "numbers")
        self.unknown(numbers_data, {"decimal", "thousands"}, "numbers")
        decimal = self.text(numbers_data.get("decimal", "."), "numbers.decimal")
        thousands = self.text(numbers_data.get("thousands", ""), "numbers.thousands")
        if decimal not in (".", ","):
            raise self.error("numbers.decimal", f'must be "." or ",", got {decimal!r}')
        if thousands == decimal:
            raise self.error("numbers.thousands", "must differ from numbers.decimal")
        csv_data = self.mapping(data.get("csv") or {}, "csv")
        self.unknown(csv_data, {"delimiter", "encoding"}, "csv")
        delimiter = self.text(csv_data.get("delimiter", ","), "csv.delimiter")
        if len(delimiter) != 1:
            raise self.error("csv.delimiter", f"must be one character, got {delimiter!r}")
        encoding = self.text(csv_data.get("encoding", "utf-8-sig"), "csv.encoding")
        try:
            "".encode(encoding)
        except LookupError:
            raise self.error("csv.encoding", f"unknown encoding {encoding!r}") from None
        return ColumnMapping(
            path=self.path, fixed_type=fixed_type, return_when=return_when, group_by=group,
            fields=fields, lines=lines, skip_when=tuple(rules),
            numbers=Numbers(decimal, thousands), delimiter=delimiter, encoding=encoding,
            references=tuple(self.references))

    def event_type(self, value: Any) -> tuple[str | None, Condition | None]:
        if value is None:
            raise self.error("type", "required: one of " + ", ".join(MODELS)
                             + ", or {default: order, return_when: CONDITION}")
        if isinstance(value, str):
            if value not in MODELS:
                raise self.error("type", f"unknown event type {value!r} (types: "
                                         f"{', '.join(MODELS)})")
            return value, None
        data = self.mapping(value, "type")
        self.unknown(data, {"default", "return_when"}, "type")
        if data.get("default", "order") != "order":
            raise self.error("type.default", "must be order (return_when picks returns)")
        if "return_when" not in data:
            raise self.error("type.return_when", "required when type is a rule")
        return None, self.condition(data["return_when"], "type.return_when")


def load_mapping(path: Path) -> ColumnMapping:
    """Read and check a mapping file (columns are checked against a CSV header later)."""
    try:
        data = load_yaml(path)
    except ConfigError as exc:
        raise MappingError(str(exc)) from exc
    return _Parser(path).parse(data)


def _open(path: Path, encoding: str) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding=encoding, errors="replace", newline="")
    return path.open("r", encoding=encoding, errors="replace", newline="")


def _header(path: Path, mapping: ColumnMapping) -> list[str] | None:
    with _open(path, mapping.encoding) as handle:
        reader = csv.reader(handle, delimiter=mapping.delimiter)
        try:
            for row in reader:
                if any(cell.strip() for cell in row):
                    return [cell.strip() for cell in row]
        except csv.Error as exc:
            raise MappingError(f"{path}: line {reader.line_num}: unreadable CSV header: "
                               f"{exc}") from exc
    return None


def convert_with_mapping(csv_path: Path, mapping_path: Path,
                         report: ImportReport | None = None, *,
                         rejects: RejectSink | None = None) -> Iterator[dict[str, Any]]:
    """Canonical events (as dicts) from a CSV export, as the mapping file says, by time.

    The mapping is read and checked against the CSV header at once (MappingError); rows
    are read when the result is iterated, with every skipped row counted in `report` and,
    when given, kept in `rejects`.
    """
    mapping = load_mapping(mapping_path)
    header = _header(csv_path, mapping)
    if header is not None:
        mapping.check_header(header)
    return _Converter(mapping, report if report is not None else ImportReport(),
                      rejects, str(csv_path)).run(csv_path)


@dataclass
class _Group:
    """The rows that make one event."""

    type: str
    event: dict[str, Any]
    first_line: int
    label: str
    lines: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 1


class _Converter:
    def __init__(self, mapping: ColumnMapping, report: ImportReport,
                 rejects: RejectSink | None = None, source: str = "") -> None:
        self.mapping = mapping
        self.report = report
        self.rejects = rejects
        self.source = source
        self.listed = 0
        self.sources = {spec.key: spec.source()
                        for spec in [*mapping.fields.values(), *mapping.lines.values()]}

    def skip_row(self, line: int, reason: str, rows: int = 1, *, raw: str = "",
                 event_id: str | None = None) -> None:
        """Count a row that cannot be converted, by line while there are few of them; keep
        it in the rejects sink, every one."""
        if self.rejects is not None:
            self.rejects.add(Reject(self.source, line, reason, raw, event_id))
        if self.listed < MAX_LISTED_ROWS:
            self.listed += 1
            self.report.skipped[f"line {line}: {reason}"] += rows
        else:
            self.report.skipped[f"more rows that could not be converted (only the first "
                                f"{MAX_LISTED_ROWS} are listed by line)"] += rows

    def explain(self, error: ValidationError, event_type: str) -> str:
        """Pydantic's errors as `field (column 'X'): message, got 'value'`."""
        parts = []
        for item in error.errors(include_url=False):
            loc = [str(p) for p in item["loc"] if not isinstance(p, int)]
            if loc and loc[0] == event_type:
                loc = loc[1:]
            name = ".".join(loc) or "record"
            key = name if name.startswith("lines.") else f"fields.{name}"
            source = self.sources.get(key)
            if item["type"] == "missing" and source is not None:
                parts.append(f"{name}: {source} is empty")
                continue
            where = f"{name} ({source})" if source else name
            shown = repr(item.get("input"))
            if len(shown) > 60:
                shown = shown[:57] + "..."
            parts.append(f"{where}: {item['msg']}, got {shown}")
        return "; ".join(parts)

    def rows(self, path: Path) -> Iterator[tuple[int, dict[str, str]]]:
        """(CSV line, row by column) for every non-blank data row; bad rows are skipped."""
        with _open(path, self.mapping.encoding) as handle:
            reader = csv.reader(handle, delimiter=self.mapping.delimiter)
            header: list[str] | None = None
            while True:
                start = reader.line_num + 1
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    self.report.rows += 1
                    self.skip_row(start, f"unreadable CSV: {exc}")  # the raw line is lost
                    continue
                if not any(cell.strip() for cell in cells):
                    continue
                if header is None:
                    header = [cell.strip() for cell in cells]
                    continue
                self.report.rows += 1
                if len(cells) != len(header):
                    self.skip_row(start, f"{len(cells)} fields, the header has {len(header)}",
                                  raw=self.csv_line(cells))
                    continue
                yield start, {name: cell.strip() for name, cell in zip(header, cells,
                                                                         strict=True)}

    def csv_line(self, cells: list[str]) -> str:
        """A row as one CSV line again (for the rejects file)."""
        out = io.StringIO()
        csv.writer(out, delimiter=self.mapping.delimiter, lineterminator="").writerow(cells)
        return out.getvalue()

    def read_fields(self, specs: dict[str, ValueSpec], row: dict[str, str]) -> dict[str, Any]:
        values = {}
        for name, spec in specs.items():
            value = spec.read(row, self.mapping.numbers)
            if value is not ABSENT:
                values[name] = value
        return values

    def convert_row(self, row: dict[str, str]) -> tuple[str, dict[str, Any],
                                                        dict[str, Any] | None]:
        """(type, event fields, line) of a row, validated; _RowError or ValidationError."""
        event_type = self.mapping.type_of(row)
        event = {"type": event_type, **self.read_fields(self.mapping.fields, row)}
        line = None
        if self.mapping.transactional:
            line = self.read_fields(self.mapping.lines, row)
            if event_type == "return" and isinstance(line.get("quantity"), float):
                line["quantity"] = abs(line["quantity"])
            parsed = parse_event({**event, "lines": [line]})
        else:
            parsed = parse_event(event)
        event["occurred_at"] = parsed.occurred_at  # a datetime, also from a constant
        return event_type, event, line

    def run(self, path: Path) -> Iterator[dict[str, Any]]:
        mapping = self.mapping
        groups: dict[tuple[str, ...], _Group] = {}
        event_ids: dict[str, int] = {}
        for line_no, row in self.rows(path):
            rule = next((r for r in mapping.skip_when if r.when.holds(row, mapping.numbers)),
                        None)
            if rule is not None:
                self.report.skipped[rule.reason] += 1
                continue
            raw = self.csv_line(list(row.values()))
            try:
                event_type, event, line = self.convert_row(row)
            except _RowError as exc:
                self.skip_row(line_no, str(exc), raw=raw)
                continue
            except ValidationError as exc:
                self.skip_row(line_no, self.explain(exc, mapping.type_of(row)), raw=raw)
                continue
            key = (tuple(row[c] for c in mapping.group_by) if mapping.group_by
                   else (str(line_no),))
            group = groups.get(key)
            if group is None:
                event_id = str(event["event_id"])
                if event_id in event_ids:
                    self.skip_row(line_no, f"duplicate event_id {event_id!r} (already made "
                                           f"from line {event_ids[event_id]})", raw=raw,
                                  event_id=event_id)
                    continue
                event_ids[event_id] = line_no
                label = ", ".join(f"{c}={row[c]!r}" for c in mapping.group_by)
                group = groups[key] = _Group(event_type, event, line_no, label)
            else:
                problem = self.conflict(group, event_type, event)
                if problem:
                    self.skip_row(line_no, problem, raw=raw,
                                  event_id=str(group.event.get("event_id")))
                    continue
                group.rows += 1
                group.event["occurred_at"] = min(group.event["occurred_at"],
                                                 event["occurred_at"])
            if line is not None:
                group.lines.append(line)
        yield from self.finish(list(groups.values()))

    def conflict(self, group: _Group, event_type: str, event: dict[str, Any]) -> str | None:
        """Why a row cannot join its group, or None."""
        where = f"the group {group.label} (line {group.first_line})"
        if event_type != group.type:
            return (f"{_article(event_type)} {event_type} row in {where}, which is "
                    f"{_article(group.type)} {group.type}")
        for name in sorted(set(event) | set(group.event)):
            if name == "occurred_at":
                continue
            mine, theirs = event.get(name), group.event.get(name)
            if mine != theirs:
                return f"{name} {mine!r} differs from {theirs!r} in {where}"
        return None

    def finish(self, groups: list[_Group]) -> Iterator[dict[str, Any]]:
        ready = []
        for group in groups:
            event = group.event
            if self.mapping.transactional:
                event["lines"] = group.lines
            try:
                parse_event(event)
            except ValidationError as exc:
                self.skip_row(group.first_line, f"the event of {group.rows} rows from here "
                                                f"is invalid: {self.explain(exc, group.type)}",
                              rows=group.rows, raw=json.dumps(event, default=str,
                                                              ensure_ascii=False),
                              event_id=str(event.get("event_id")))
                continue
            ready.append(event)
        ready.sort(key=lambda e: e["occurred_at"])
        counters = {"order": "orders", "return": "returns", "customer": "customers",
                    "product": "products"}
        for event in ready:
            event["occurred_at"] = event["occurred_at"].isoformat()
            self.report.events += 1
            counter = counters.get(event["type"])
            if counter is not None:
                setattr(self.report, counter, getattr(self.report, counter) + 1)
            yield event
