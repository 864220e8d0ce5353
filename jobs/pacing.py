"""Sending pace, shared by every worker on every machine.

Each send reserves the next free slot of its channel in Redis (one Lua script,
using Redis's own clock, so all machines agree): slots are 1/rate apart, so no
window of a second holds more than the configured rate, and with a backlog the
slots follow each other back to back. A worker sleeps until its slot — at most a
few slots away, since a worker holds one reservation at a time.
"""

from __future__ import annotations

import time

from redis import Redis

from core.config import Settings, settings

SAFETY = 1.05  # slots a little wider than 1/rate: a text sent up to 50 ms late never packs a second
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_free < now then next_free = now end
redis.call('SET', KEYS[1], next_free + interval, 'PX', math.floor(interval / 1000) + 60000)
return next_free - now
"""


def rate_for(channel: str, config: Settings | None = None) -> float | None:
    config = config or settings()
    return {"sms": config.sms_rate, "email": config.email_rate}.get(channel)


class Pace:
    def __init__(self, redis: Redis, channel: str, rate: float):
        self.key = f"ledgersync:pace:{channel}"
        self.interval_us = int(1_000_000 * SAFETY / rate)
        self._reserve = redis.register_script(RESERVE)

    def reserve(self) -> float:
        """Seconds until this caller's slot."""
        return int(self._reserve(keys=[self.key], args=[self.interval_us])) / 1_000_000

    def wait_turn(self) -> float:
        waited = self.reserve()
        if waited > 0:
            time.sleep(waited)
        return waited


def pace(redis: Redis, channel: str) -> Pace | None:
    rate = rate_for(channel)
    return Pace(redis, channel, rate) if rate else None


def reserve(redis: Redis, channel: str) -> float | None:
    """The next free slot of the channel, reserved, as a Unix time; None when the
    channel has no pace (firm notices)."""
    paced = pace(redis, channel)
    return time.time() + paced.reserve() if paced is not None else None


def until(slot: float | None) -> None:
    """Sleep until a reserved slot (a second at most: later ones are scheduled)."""
    if slot is not None and slot > time.time():
        time.sleep(slot - time.time())
