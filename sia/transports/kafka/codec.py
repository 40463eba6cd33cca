"""JSON on every topic (never pickle): events in, alerts out, rejects with their reason."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import ValidationError

from sia.events.models import Event, parse_event
from sia.events.reader import explain_validation_error
from sia.findings import Finding, Severity
from sia.policy import Alert


class Undecodable(ValueError):
    """A message that is not a valid event; the text says why."""


def encode_event(event: Event) -> bytes:
    """An event as the events topics carry it."""
    return event.model_dump_json(exclude_none=True).encode()


def decode_event(value: bytes | None) -> Event:
    """The event in a message, or Undecodable naming the reason."""
    if value is None:
        raise Undecodable("empty message (no value)")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Undecodable(f"not UTF-8 text: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise Undecodable(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Undecodable(f"not a JSON object but {type(data).__name__}")
    try:
        return parse_event(data)
    except ValidationError as exc:
        raise Undecodable(explain_validation_error(exc)) from None


class Forwarded(NamedTuple):
    """A message of the events-by-rep topic: an event forwarded from a customer partition
    (`source`, at `offset` there), or that partition's progress (`reached`) alone."""

    source: int
    offset: int
    event: Event | None
    reached: datetime | None


def encode_forwarded(source: int, offset: int, event: Event) -> bytes:
    """An event forwarded by rep, with where it came from (to merge it back into event
    time, see sia.engine.merge)."""
    return (f'{{"source":{source},"offset":{offset},"event":'.encode()
            + encode_event(event) + b"}")


def encode_progress(source: int, reached: datetime) -> bytes:
    """A customer partition's progress in event time."""
    return json.dumps({"source": source, "reached": reached.isoformat()}).encode()


class Shared(NamedTuple):
    """A message of the population topic: a customer partition's population-model
    updates, (stamp, sequence, detector, update) each, and how far it is complete."""

    source: int
    complete: int | None
    updates: list[tuple[int, int, str, tuple[Any, ...]]]


def encode_shared(source: int, complete: int | None,
                  updates: list[tuple[int, int, str, tuple[Any, ...]]]) -> bytes:
    """Population-model updates of partition `source` (see sia/engine/population.py)."""
    return json.dumps({"source": source, "complete": complete, "updates": updates},
                      separators=(",", ":")).encode()


def decode_shared(value: bytes | None) -> Shared:
    """What a message of the population topic holds, or Undecodable with the reason."""
    if value is None:
        raise Undecodable("empty message (no value)")
    try:
        data = json.loads(value)
        source, complete, updates = data["source"], data["complete"], data["updates"]
        if not isinstance(source, int) or isinstance(source, bool):
            raise Undecodable(f"source is not a partition number: {source!r}")
        if complete is not None and not isinstance(complete, int):
            raise Undecodable(f"complete is not a time in seconds: {complete!r}")
        items = []
        for stamp, seq, detector, update in updates:
            if not (isinstance(stamp, int) and isinstance(seq, int)
                    and isinstance(detector, str) and isinstance(update, list)):
                raise Undecodable(f"not an update: {[stamp, seq, detector, update]!r}")
            items.append((stamp, seq, detector, tuple(update)))
        return Shared(source, complete, items)
    except Undecodable:
        raise
    except KeyError as exc:
        raise Undecodable(f"not population updates: no {exc} field") from None
    except (ValueError, TypeError) as exc:
        raise Undecodable(f"not population updates: {type(exc).__name__}: {exc}") from None


def decode_forwarded(value: bytes | None) -> Forwarded:
    """What a message of the events-by-rep topic holds, or Undecodable with the reason."""
    if value is None:
        raise Undecodable("empty message (no value)")
    try:
        data = json.loads(value)
        source = data["source"]
        if not isinstance(source, int) or isinstance(source, bool):
            raise Undecodable(f"source is not a partition number: {source!r}")
        if "reached" in data:
            return Forwarded(source, -1, None, datetime.fromisoformat(data["reached"]))
        offset = data["offset"]
        if not isinstance(offset, int):
            raise Undecodable(f"offset is not a number: {offset!r}")
        return Forwarded(source, offset, parse_event(data["event"]), None)
    except Undecodable:
        raise
    except ValidationError as exc:
        raise Undecodable(explain_validation_error(exc)) from None
    except KeyError as exc:
        raise Undecodable(f"not a forwarded event: no {exc} field") from None
    except (ValueError, TypeError) as exc:
        raise Undecodable(f"not a forwarded event: {type(exc).__name__}: {exc}") from None


def encode_alert(alert: Alert) -> bytes:
    """An alert as the alerts topic carries it."""
    return json.dumps({"alert_id": alert.alert_id, **alert.finding.to_dict()},
                      sort_keys=True).encode()


def decode_alert(value: bytes) -> Alert:
    """The alert in a message of the alerts topic."""
    data: dict[str, Any] = json.loads(value)
    finding = Finding(
        detector=data["detector"], kind=data["kind"], subject_kind=data["subject_kind"],
        subject_id=data["subject_id"], occurred_at=datetime.fromisoformat(data["occurred_at"]),
        score=data["score"], severity=Severity(data["severity"]), title=data["title"],
        explanation=data["explanation"], action=data["action"], dedup_key=data["dedup_key"],
        evidence=tuple(data["evidence"]), value=data["value"], facts=data["facts"])
    return Alert(data["alert_id"], finding)


def dead_letter(*, topic: str, partition: int, offset: int, key: bytes | None,
                value: bytes | None, reason: str) -> bytes:
    """What the dead-letter topic keeps of a message it could not process: where it came
    from, the message as text (bytes that are not UTF-8 are escaped) and the reason."""
    def text(raw: bytes | None) -> str | None:
        return None if raw is None else raw.decode("utf-8", errors="backslashreplace")

    event_id = None
    try:
        data = json.loads(value or b"")
        if isinstance(data, dict) and isinstance(data.get("event_id"), str):
            event_id = data["event_id"]
    except ValueError:
        pass
    return json.dumps({"topic": topic, "partition": partition, "offset": offset,
                       "event_id": event_id, "key": text(key), "value": text(value),
                       "reason": reason}).encode()
