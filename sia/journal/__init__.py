"""The event journal: every accepted event once, in the order it was accepted, and every
rejected record with its reason."""

from sia.journal.store import Accepted, Journal, JournalEntry, RejectEntry, StoredReject

__all__ = ["Accepted", "Journal", "JournalEntry", "RejectEntry", "StoredReject"]
