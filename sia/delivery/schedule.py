"""Local-time arithmetic for delivery: quiet hours and digest times in a recipient's zone."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str | None) -> ZoneInfo:
    """The recipient's zone; UTC when unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_clock(text: str) -> time:
    """'07:30' -> time(7, 30)."""
    hours, minutes = text.strip().split(":")
    return time(int(hours), int(minutes))


def after_quiet_hours(at: datetime, quiet: str | None, tz: str | None) -> datetime:
    """`at`, or the end of the quiet hours ('19:00-07:30', local) when it falls inside them."""
    if not quiet:
        return at
    start_text, end_text = quiet.split("-")
    start, end = parse_clock(start_text), parse_clock(end_text)
    local = at.astimezone(zone(tz))
    now = local.time()
    inside = (start <= now or now < end) if start > end else (start <= now < end)
    if not inside:
        return at
    end_day = local.date() if now < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, tzinfo=local.tzinfo).astimezone(at.tzinfo)


def next_local(at: datetime, clock: str, tz: str | None) -> datetime:
    """The first moment at or after `at` when the recipient's clock shows `clock`."""
    local = at.astimezone(zone(tz))
    target = datetime.combine(local.date(), parse_clock(clock), tzinfo=local.tzinfo)
    if target < local:
        target = datetime.combine(local.date() + timedelta(days=1), parse_clock(clock),
                                  tzinfo=local.tzinfo)
    return target.astimezone(at.tzinfo)


def local_day(at: datetime, tz: str | None) -> str:
    """The recipient's calendar day of `at`, ISO."""
    return at.astimezone(zone(tz)).date().isoformat()
