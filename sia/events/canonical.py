"""An event's canonical JSON and its digest: the same event, however it was spelled (key
order, spacing), gives the same text; the journal stores it and compares digests, the
engine keeps a short digest with each id it has seen, to tell a repeat from a conflict."""

from __future__ import annotations

import hashlib
import json

from sia.events.models import Customer, Event


def canonical(event: Event) -> str:
    """The event's canonical JSON.

    The contract's models give their fields in one order whatever order they came in;
    free-form `attributes` (customers) keep theirs, so those are sorted. pydantic's own
    serialiser is four times faster than json.dumps of a dump (8 against 37 us for an
    order of 20 lines): this runs for every event received."""
    if isinstance(event, Customer) and event.attributes:
        return json.dumps(event.model_dump(mode="json"), sort_keys=True,
                          separators=(",", ":"), ensure_ascii=False)
    return event.model_dump_json()


def short_digest(event: Event) -> int:
    """64 bits of the BLAKE2b of the canonical JSON (what an engine keeps per id)."""
    data = hashlib.blake2b(canonical(event).encode(), digest_size=8).digest()
    return int.from_bytes(data, "big")
