"""Rejected records a page at a time, newest first: what GET /v1/rejects and the
console's rejects page both read (the journal keeps each whole, with its reason)."""

from __future__ import annotations

from dataclasses import dataclass

from sia.journal import Journal, StoredReject


@dataclass(frozen=True)
class RejectPage:
    """One page of rejects and the cursor of the next (None: the last page)."""

    items: list[StoredReject]
    next_cursor: str | None


def reject_page(journal: Journal, *, cursor: str | None, limit: int,
                source: str | None = None) -> RejectPage:
    """`limit` rejects older than `cursor` (a reject id), of `source` when given."""
    rows = list(journal.rejects(after=int(cursor or 0), limit=limit + 1, source=source))
    more = len(rows) > limit
    rows = rows[:limit]
    return RejectPage(rows, str(rows[-1].id) if more and rows else None)
