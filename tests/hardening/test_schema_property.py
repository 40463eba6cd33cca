"""Hardening, property (issue 18): events generated from the published JSON Schema never
crash the engine (each is learned, a repeat, or refused with a reason), and records
broken from them are rejected by the contract with a reason that names the field."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sia.detectors.config import load_detectors
from sia.engine.engine import FILE_CHUNK, Engine, replay
from sia.events.models import Event, event_json_schema, parse_event
from sia.events.reader import Reject, validate_line

from .schema_strategies import from_schema

PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])
SCHEMA = event_json_schema()
RECORDS = from_schema(SCHEMA)
POOL = ["C1", "C2", "C3", "P1", "P2", "R1"]  # ids drawn again, so that detectors warm up
ID_FIELDS = ("customer_id", "product_id", "rep_id", "owner_rep_id", "manager_id")


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Schema-valid records, some with ids from a small pool and times close to the
    previous record's (still schema-valid: what a real stream looks like), some not."""
    records = draw(st.lists(RECORDS, min_size=1, max_size=25))
    at: datetime | None = None
    for record in records:
        if draw(st.booleans()):
            for name in ID_FIELDS:
                if name in record:
                    record[name] = draw(st.sampled_from(POOL))
            for line in record.get("lines", ()):
                line["product_id"] = draw(st.sampled_from(POOL))
        if at is not None and draw(st.integers(0, 3)):
            record["occurred_at"] = (at + timedelta(hours=draw(st.integers(-200, 400)))
                                     ).isoformat()
        try:
            at = datetime.fromisoformat(record["occurred_at"])
        except ValueError:
            at = None
    return records


@settings(PROPERTY, max_examples=100)
@given(records=streams(), chunk=st.sampled_from([1, FILE_CHUNK]))
def test_events_from_the_schema_never_crash_the_engine(records: list[dict[str, Any]],
                                                       chunk: int) -> None:
    events: list[Event] = []
    for number, record in enumerate(records, start=1):
        line = json.dumps(record)
        parsed = validate_line(line, source="schema.jsonl", line=number)
        if isinstance(parsed, Reject):  # valid JSON Schema, but not the whole contract
            assert parsed.reason  # e.g. a year outside 1970..2200, an id of spaces
            continue
        events.append(parsed)
    refused: list[str] = []
    # isolate=False: a detector's exception would fail the test, not be rolled back
    engine = Engine(load_detectors(None), isolate=False,
                    on_reject=lambda e, why: refused.append(why))
    for finding in replay(engine, events, chunk=chunk):
        assert 0.0 <= finding.score <= 1.0 and finding.title
    assert engine.observed + engine.duplicates + engine.rejected == len(events)
    # refused for their time, or as an id that came again with other content
    assert all("occurred_at" in why or why.startswith("conflict: ") for why in refused)


BREAKS = ["drop", "null", "wrong type", "control character", "too long", "extra field"]


KINDS = {name: from_schema(SCHEMA, definition=name) for name in SCHEMA["$defs"]
         if "type" in SCHEMA["$defs"][name]["properties"]}


@PROPERTY
@given(name=st.sampled_from(sorted(KINDS)), data=st.data(), how=st.sampled_from(BREAKS))
def test_records_broken_from_the_schema_are_rejected_naming_the_field(
        name: str, data: st.DataObject, how: str) -> None:
    record = data.draw(KINDS[name])
    definition = SCHEMA["$defs"][name]
    kind = record["type"] = definition["properties"]["type"]["const"]
    required = [f for f in definition["required"] if f != "type"]
    ids = [f for f in required if f.endswith("_id")]
    if how == "drop":
        field = data.draw(st.sampled_from(required))
        del record[field]
    elif how == "null":
        field = data.draw(st.sampled_from(required))
        record[field] = None
    elif how == "wrong type":
        field = data.draw(st.sampled_from(required))
        record[field] = data.draw(st.sampled_from([[], {}, True]))
    elif how == "control character":
        field = data.draw(st.sampled_from(ids))
        char = data.draw(st.sampled_from(["\x00", "\x1b", "\u202e", "\u2066", "\u200b",
                                          "\ufeff", "\n"]))
        record[field] = f"a{char}b"
    elif how == "too long":
        field = data.draw(st.sampled_from(ids))
        record[field] = "x" * 201
    else:
        field = "unexpected"
        record[field] = 1
    try:
        parse_event(record)
    except ValidationError:
        pass
    else:
        raise AssertionError(f"accepted after {how} of {field}: {record}")
    result = validate_line(json.dumps(record), source="broken.jsonl", line=1)
    assert isinstance(result, Reject)
    assert f"{kind}.{field}" in result.reason or f".{field}" in result.reason, result.reason
