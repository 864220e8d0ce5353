"""Quiet hours: automatic texts wait for the client's morning.

The client's zone comes from the client record, else from the phone number, else
from the firm. The window (default 21:00-08:00) is the QUIET_HOURS setting.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from core.platform import clock, phones
from core.platform.config import QuietHours, settings


def zone_for(client) -> tzinfo:
    name = client.timezone or (client.phone and phones.zone_of(client.phone))
    return clock.zone(name or None, client.firm.timezone)


def next_allowed(at: datetime, tz: tzinfo, window: QuietHours | None = None) -> datetime:
    """`at` itself when outside quiet hours, else the end of the window (aware UTC)."""
    window = window if window is not None else settings().quiet_hours
    if window is None:
        return at
    local = clock.as_utc(at).astimezone(tz)
    if not window.contains(local.time().replace(tzinfo=None)):
        return at
    morning = local.replace(hour=window.end.hour, minute=window.end.minute, second=0,
                            microsecond=0)
    if morning <= local:
        morning = morning + timedelta(days=1)
    return clock.as_utc(morning.replace(tzinfo=None).replace(tzinfo=tz))
