"""Read JSON Lines event files: every bad record is reported, counted and kept, never dropped.

A file that cannot be read to its end (a truncated or corrupt `.gz`, a read error) ends
with one more Reject, after every record read before the fault: its line is the one
after the last complete line, its reason says the file ends early, and its raw text is
empty. The records before it go on to the engine, so a replay stores their alerts.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from sia.events.models import Event, parse_event


@dataclass(frozen=True, slots=True)
class Reject:
    """A record that failed validation, with where it came from and why."""

    source: str
    line: int
    reason: str
    raw: str
    event_id: str | None = None

    def describe(self) -> str:
        """One line for a person: which record, and what is wrong with it."""
        ident = f" (event_id={self.event_id})" if self.event_id else ""
        where = f"{self.source}:{self.line}" if self.line else self.source  # 0: not known
        return f"{where}{ident}: {self.reason}"

    def to_json(self) -> str:
        """The reject as one JSON line, raw record included so nothing is lost."""
        return json.dumps(
            {
                "source": self.source,
                "line": self.line,
                "event_id": self.event_id,
                "reason": self.reason,
                "raw": self.raw,
            },
            ensure_ascii=False,
        )


class RejectedRecord(Exception):
    """Raised in strict mode on the first bad record."""

    def __init__(self, reject: Reject) -> None:
        super().__init__(reject.describe())
        self.reject = reject


def explain_validation_error(error: ValidationError) -> str:
    """Condense pydantic's errors to `field.path: message; ...`."""
    parts = []
    for item in error.errors(include_url=False):
        loc = ".".join(str(p) for p in item["loc"]) or "record"
        parts.append(f"{loc}: {item['msg']}")
    return "; ".join(parts)


def _event_id_of(raw: str) -> str | None:
    try:
        data: Any = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, dict) and isinstance(data.get("event_id"), str):
        return str(data["event_id"])
    return None


def validate_line(raw: str, *, source: str, line: int) -> Event | Reject:
    """Parse one JSON line into an event, or a Reject saying why not."""
    try:
        return parse_event(raw)
    except ValidationError as exc:
        return Reject(source, line, explain_validation_error(exc), raw, _event_id_of(raw))
    except (ValueError, RecursionError) as exc:  # invalid UTF-8, absurd nesting
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return Reject(source, line, f"not valid JSON: {reason}", raw, None)


def open_text(path: Path) -> IO[str]:
    """Open a text file, transparently gunzipping `.gz`."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open("r", encoding="utf-8", errors="replace")


TRUNCATED = "file ends early"  # how the reason of a Reject for an unreadable rest begins


def read_lines(lines: Iterable[str], *, source: str) -> Iterator[Event | Reject]:
    """Validate JSON lines; blank lines are skipped, line numbers start at 1. A fault
    reading on (see the module) ends the stream with a Reject for the line it hit."""
    number = 0
    iterator = iter(lines)
    while True:
        try:
            raw = next(iterator)
        except StopIteration:
            return
        except (EOFError, OSError, zlib.error) as exc:  # truncated or corrupt gzip, I/O
            yield Reject(source, number + 1, f"{TRUNCATED}: cannot read past line {number} "
                         f"({type(exc).__name__}: {exc}); the records before it were read",
                         "", None)
            return
        number += 1
        text = raw.strip()
        if text:
            yield validate_line(text, source=source, line=number)


def read_events(path: Path) -> Iterator[Event | Reject]:
    """Validate every record of a JSON Lines file (optionally gzipped)."""
    with open_text(path) as handle:
        yield from read_lines(handle, source=str(path))


class RejectSink:
    """Counts rejects and appends them to a JSONL file (opened lazily, only if needed)."""

    def __init__(self, path: Path | None, *, strict: bool = False) -> None:
        self.path = path
        self.strict = strict
        self.count = 0
        self.first: list[Reject] = []
        self.last: Reject | None = None
        self._handle: IO[str] | None = None

    def add(self, reject: Reject) -> None:
        """Keep a reject; in strict mode, fail the run with it."""
        self.count += 1
        self.last = reject
        if len(self.first) < 20:
            self.first.append(reject)
        if self.path is not None:
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = self.path.open("a", encoding="utf-8")
            self._handle.write(reject.to_json() + "\n")
            self._handle.flush()
        if self.strict:
            raise RejectedRecord(reject)

    def close(self) -> None:
        """Close the rejects file."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
