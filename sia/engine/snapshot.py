"""Snapshots of learned state: a header with versions, then the pickled state.

A snapshot is a local file SIA wrote itself; never load one from an untrusted source
(it is a pickle). A snapshot made with other versions of SIA, river or Python is
refused with a message that says which versions differ (the state format counts as a
version: it changes when a detector packs its state differently).
"""

from __future__ import annotations

import gzip
import json
import pickle
import platform
from importlib.metadata import version
from typing import Any

import sia

MAGIC = b"SIA-SNAPSHOT 1\n"
# layout of the pickled per-customer state; bump when a detector's state layout changes,
# so a snapshot of the old layout is refused with a message rather than misread.
# 2: fields at their initial value left out, cross-sell baskets as varints.
STATE_FORMAT = 2


class SnapshotError(RuntimeError):
    """A snapshot cannot be read, or was made with other versions."""


def versions() -> dict[str, str]:
    """The versions a snapshot depends on."""
    return {
        "sia": sia.__version__,
        "river": version("river"),
        "python": ".".join(platform.python_version_tuple()[:2]),
        "pickle_protocol": str(pickle.DEFAULT_PROTOCOL),
        "state_format": str(STATE_FORMAT),
    }


def dump(state: Any, *, detectors: dict[str, dict[str, Any]]) -> bytes:
    """Serialise engine state with a header of versions and detector thresholds."""
    payload = gzip.compress(pickle.dumps(state, protocol=pickle.DEFAULT_PROTOCOL), 6)
    return dump_raw(payload, detectors=detectors)


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
    payload = load_raw(blob, detectors=detectors)
    try:
        return pickle.loads(gzip.decompress(payload))
    except Exception as exc:
        raise SnapshotError(f"snapshot payload is corrupt: {exc}") from exc


def load_raw(blob: bytes, *, detectors: list[str]) -> bytes:
    """The payload after a header that matches these versions and detectors."""
    header = read_header(blob)
    made_with = header.get("versions", {})
    here = versions()
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
