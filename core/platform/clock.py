"""The one clock core reads. Tests travel it with time-machine; nothing else calls
`datetime.now()` directly, so every instant core handles is aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Aware UTC for any datetime; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def zone(name: str | None, fallback: str = "UTC") -> tzinfo:
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return UTC


def short_date(value: datetime, tz: tzinfo) -> str:
    """'Fri 27 Nov' in the reader's zone."""
    local = as_utc(value).astimezone(tz)
    return f"{local:%a} {local.day} {local:%b}"


def short_datetime(value: datetime, tz: tzinfo) -> str:
    """'Fri 27 Nov, 9:05 AM' in the reader's zone."""
    local = as_utc(value).astimezone(tz)
    hour = local.hour % 12 or 12
    return f"{short_date(local, tz)}, {hour}:{local:%M} {local:%p}"
