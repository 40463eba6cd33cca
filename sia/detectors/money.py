"""Money and date formatting for explanations a salesperson reads."""

from __future__ import annotations

from datetime import UTC, datetime

from sia.detectors.rhythm import DAY

_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$", "JPY": "¥"}


def money(amount: float, currency: str | None) -> str:
    """£3,200 for GBP; '1,200 CHF' for currencies without a common symbol."""
    rounded = f"{amount:,.0f}" if abs(amount) >= 100 else f"{amount:,.2f}"
    code = (currency or "").upper()
    if code in _SYMBOLS:
        return f"{_SYMBOLS[code]}{rounded}"
    return f"{rounded} {code}".strip()


def day_label(day: float) -> str:
    """ISO date of a day number since the epoch."""
    return datetime.fromtimestamp(day * DAY, UTC).date().isoformat()
