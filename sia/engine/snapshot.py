"""Snapshots of learned state: a header with versions, then the state as data.

The state is written by sia/engine/state_codec.py (JSON, compressed): reading a snapshot
never runs code from it, and builds only the classes of the codec's allowlist, so a
crafted or damaged file is refused with a SnapshotError. A snapshot made with other
versions of SIA, river or Python is refused with a message that says which versions
differ (the state format counts as a version: it changes when a detector keeps its
state differently, or the encoding changes). Snapshots of state formats 1 and 2 were
pickles: they are refused, and the events must be replayed to rebuild the state.
"""

from __future__ import annotations

import json
import platform
import zlib
from importlib.metadata import version
from typing import Any

import sia
from sia.engine import state_codec

MAGIC = b"SIA-SNAPSHOT 1\n"
# layout of the learned state; bump when a detector's state layout changes, so a
# snapshot of the old layout is refused with a message rather than misread.
# 2: fields at their initial value left out, cross-sell baskets as varints (a pickle).
# 3: the state codec (sia/engine/state_codec.py): JSON, no pickle.
STATE_FORMAT = 3
PICKLED_FORMATS = (None, "1", "2")  # state formats written as pickles (None: unrecorded)
LEVEL = 6  # zlib compression of a snapshot's state


class SnapshotError(RuntimeError):
    """A snapshot cannot be read, or was made with other versions."""


def versions() -> dict[str, str]:
    """The versions a snapshot depends on."""
    return {
        "sia": sia.__version__,
        "river": version("river"),
        "python": ".".join(platform.python_version_tuple()[:2]),
        "state_format": str(STATE_FORMAT),
    }


def dump(state: Any, *, detectors: dict[str, dict[str, Any]]) -> bytes:
    """Serialise engine state with a header of versions and detector thresholds.
    Raises state_codec.UnsupportedState, naming the value and where it is, for state
    the codec does not allow."""
    return dump_raw(encode_state(state, level=LEVEL), detectors=detectors)


def encode_state(state: Any, *, level: int) -> bytes:
    """State as a compressed state-codec document (for `dump_raw` callers)."""
    return zlib.compress(state_codec.dumps(state), level)


def decode_state(payload: bytes, *, what: str = "snapshot") -> Any:
    """The state of an `encode_state` payload; SnapshotError when it is not valid
    state (nothing in it runs: see sia/engine/state_codec.py)."""
    try:
        return state_codec.loads(state_codec.decompress(payload))
    except state_codec.StateError as exc:
        raise SnapshotError(f"{what} payload is corrupt or not SIA state: {exc}") from exc


def dump_raw(payload: bytes, *, detectors: dict[str, dict[str, Any]]) -> bytes:
    """A header of versions and detector thresholds, then a payload encoded by the caller."""
    header = {"versions": versions(), "detectors": detectors}
    return MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload


def read_header(blob: bytes) -> dict[str, Any]:
    """The JSON header of a snapshot."""
    if not blob.startswith(MAGIC):
        raise SnapshotError("not a SIA snapshot (bad magic bytes)")
    end = blob.find(b"\n", len(MAGIC))
    if end < 0:
        raise SnapshotError("snapshot is truncated: its header never ends")
    try:
        header = json.loads(blob[len(MAGIC) : end])
    except ValueError as exc:
        raise SnapshotError(f"snapshot header is not valid JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise SnapshotError("snapshot header is not a JSON object")
    return header


def load(blob: bytes, *, detectors: list[str]) -> Any:
    """Restore engine state; refuses other versions or another set of detectors."""
    state = decode_state(load_raw(blob, detectors=detectors))
    held = state.get("detectors") if isinstance(state, dict) else None
    if not isinstance(held, dict) or sorted(held) != sorted(detectors) or any(
            getattr(detector, "name", None) != name for name, detector in held.items()):
        raise SnapshotError("snapshot payload is not the state of an engine running "
                            f"detectors {sorted(detectors)}")
    return state


def load_raw(blob: bytes, *, detectors: list[str]) -> bytes:
    """The payload after a header that matches these versions and detectors."""
    header = read_header(blob)
    made_with = header.get("versions", {})
    if not isinstance(made_with, dict):
        raise SnapshotError("snapshot header has no versions")
    here = versions()
    if made_with.get("state_format") in PICKLED_FORMATS or "pickle_protocol" in made_with:
        raise SnapshotError(
            f"snapshot has state_format {made_with.get('state_format')} (this SIA writes "
            f"state_format {STATE_FORMAT}): it was written by an older SIA as a pickle, "
            "which SIA no longer reads, because loading a pickle can run code from the "
            "file. It cannot be converted; replay the events to rebuild the state "
            "(sia replay EVENTS --state NEW.snap)")
    diffs = [f"{k} {made_with.get(k)} (this is {k} {v})" for k, v in here.items()
             if made_with.get(k) != v]
    if diffs:
        raise SnapshotError(
            "snapshot was made with other versions: " + ", ".join(diffs)
            + "; replay the events to rebuild state with this version"
        )
    if sorted(header.get("detectors", {})) != sorted(detectors):
        raise SnapshotError(
            f"snapshot holds detectors {sorted(header.get('detectors', {}))}, "
            f"this engine runs {sorted(detectors)}"
        )
    end = blob.find(b"\n", len(MAGIC))
    return blob[end + 1 :]
