"""The JSON Lines reader never raises on input, and keeps every reject with its reason."""

from __future__ import annotations

import gzip
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sia.events.models import Order
from sia.events.reader import (
    Reject,
    RejectedRecord,
    RejectSink,
    read_events,
    read_lines,
    validate_line,
)

from .strategies import valid_events

PROPERTY = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

GOOD = json.dumps({"type": "order", "event_id": "e1", "occurred_at": "2024-05-01T09:00:00Z",
                   "customer_id": "c1", "order_id": "o1",
                   "lines": [{"product_id": "p1", "quantity": 1, "unit_price": 2.5}]})

# Lines that look like JSON as well as arbitrary text, so both kinds of reject occur.
json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=6,
).map(json.dumps)
any_line = (st.text(max_size=80) | json_like | valid_events.map(json.dumps)
            | st.binary(max_size=80).map(lambda b: b.decode("utf-8", errors="replace")))


def expected_numbers(lines: list[str]) -> list[int]:
    return [number for number, line in enumerate(lines, start=1) if line.strip()]


def check_results(results: list[Any], lines: list[str], source: str) -> None:
    """One result per non-blank line, in order, with the line's number and text."""
    numbers = expected_numbers(lines)
    assert len(results) == len(numbers)
    for number, result in zip(numbers, results, strict=True):
        if isinstance(result, Reject):
            assert result.source == source
            assert result.line == number
            assert result.raw == lines[number - 1].strip()
            assert result.reason
            assert result.describe().startswith(f"{source}:{number}")
        else:
            assert result.type in {"order", "return", "interaction", "opportunity",
                                   "customer", "product", "rep"}


@PROPERTY
@given(lines=st.lists(any_line, max_size=12))
def test_read_lines_never_raises_and_gives_one_result_per_non_blank_line(
        lines: list[str]) -> None:
    results = list(read_lines(lines, source="feed.jsonl"))
    check_results(results, lines, "feed.jsonl")


@PROPERTY
@given(lines=st.lists(st.binary(max_size=60), max_size=10))
def test_read_lines_on_decoded_bytes(lines: list[bytes]) -> None:
    decoded = [line.decode("utf-8", errors="replace") for line in lines]
    check_results(list(read_lines(decoded, source="b")), decoded, "b")


@PROPERTY
@given(events=st.lists(valid_events, min_size=1, max_size=5),
       junk=st.lists(st.text(max_size=30), max_size=5))
def test_valid_events_are_read_as_events_and_junk_as_rejects(
        events: list[dict[str, Any]], junk: list[str]) -> None:
    junk = [j for j in junk if j.strip() and not j.strip().startswith("{")]
    lines = [json.dumps(e) for e in events] + junk
    results = list(read_lines(lines, source="s"))
    assert [r.event_id for r in results[: len(events)]] == [  # type: ignore[union-attr]
        e["event_id"] for e in events]
    assert all(isinstance(r, Reject) for r in results[len(events):])
    assert len(results) == len(events) + len(junk)


@PROPERTY
@given(content=st.binary(max_size=300), gz=st.booleans())
def test_read_events_never_raises_on_arbitrary_file_bytes(content: bytes, gz: bool) -> None:
    # Text mode reads \n, \r\n and \r as line ends; undecodable bytes become U+FFFD.
    lines = re.split(r"\r\n|\r|\n", content.decode("utf-8", errors="replace"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("events.jsonl.gz" if gz else "events.jsonl")
        path.write_bytes(gzip.compress(content) if gz else content)
        results = list(read_events(path))
    check_results(results, lines, str(path))


def test_read_events_reads_gzip_and_numbers_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress(f"{GOOD}\n\n  \nnot json\n{{\"type\": \"order\"}}\n"
                                   .encode()))
    results = list(read_events(path))
    assert isinstance(results[0], Order)
    assert [(r.line, r.raw) for r in results[1:]] == [  # type: ignore[union-attr]
        (4, "not json"), (5, '{"type": "order"}')]
    assert "event_id" in results[2].reason  # type: ignore[union-attr]


def test_reject_keeps_event_id_of_a_bad_record() -> None:
    bad = json.dumps({"type": "order", "event_id": "crm-9", "occurred_at": "yesterday"})
    result = validate_line(bad, source="s", line=3)
    assert isinstance(result, Reject)
    assert result.event_id == "crm-9"
    assert result.describe().startswith("s:3 (event_id=crm-9): ")
    assert "occurred_at" in result.reason


@pytest.mark.parametrize("raw", ["[" * 100_000, '{"a":' * 100_000])
def test_deeply_nested_json_is_a_reject_not_a_crash(raw: str) -> None:
    (result,) = read_lines([raw], source="s")
    assert isinstance(result, Reject)


# --- RejectSink ----------------------------------------------------------------------

rejects = st.builds(
    Reject,
    source=st.text(max_size=20),
    line=st.integers(1, 10**9),
    reason=st.text(max_size=40),
    raw=st.text(max_size=80),
    event_id=st.none() | st.text(max_size=10),
)


@PROPERTY
@given(items=st.lists(rejects, max_size=30))
def test_reject_sink_writes_every_reject_as_one_json_line(items: list[Reject]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "nested" / "rejects.jsonl"
        sink = RejectSink(path)
        for item in items:
            sink.add(item)
        sink.close()
        assert sink.count == len(items)
        assert sink.first == items[:20]
        if not items:
            assert not path.exists()  # opened lazily, only when needed
            return
        text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    records = [json.loads(line) for line in text[:-1].split("\n")]
    assert records == [{"source": r.source, "line": r.line, "event_id": r.event_id,
                        "reason": r.reason, "raw": r.raw} for r in items]


def test_reject_sink_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "rejects.jsonl"
    path.write_text('{"earlier": true}\n', encoding="utf-8")
    sink = RejectSink(path)
    sink.add(Reject("a.jsonl", 2, "bad", "{"))
    sink.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"earlier": True}
    assert json.loads(lines[1])["raw"] == "{"


def test_reject_sink_without_path_only_counts() -> None:
    sink = RejectSink(None)
    for line in range(1, 26):
        sink.add(Reject("s", line, "bad", "x"))
    sink.close()
    assert sink.count == 25
    assert [r.line for r in sink.first] == list(range(1, 21))


@PROPERTY
@given(lines=st.lists(any_line, min_size=1, max_size=10))
def test_strict_mode_raises_on_the_first_bad_record(lines: list[str]) -> None:
    lines = [GOOD, *lines, "not json"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rejects.jsonl"
        sink = RejectSink(path, strict=True)
        with pytest.raises(RejectedRecord) as info:
            for result in read_lines(lines, source="in.jsonl"):
                if isinstance(result, Reject):
                    sink.add(result)
        sink.close()
        first_bad = next(r for r in read_lines(lines, source="in.jsonl")
                         if isinstance(r, Reject))
        assert info.value.reject == first_bad
        assert str(info.value) == first_bad.describe()
        assert sink.count == 1
        # The reject that stopped the run is still written.
        written = path.read_text(encoding="utf-8").splitlines()
        assert [json.loads(w)["line"] for w in written] == [first_bad.line]
