"""Sending pace, shared by every worker on every machine: the one place that decides
when a text or an email may go (`slot_for`, `too_far`, `take_turn`).

Each send reserves the next free slot of its channel in Redis (one Lua script,
using Redis's own clock, so all machines agree): slots are 1/rate apart, so no
window of a second holds more than the configured rate, and with a backlog the
slots follow each other back to back. A sender sleeps until its slot — at most a
few slots away, since each holds one reservation at a time (a worker sends a bulk
run's texts from a few threads, so it holds a few). A sender that wakes up too late
for its slot (a busy machine) gives it up and takes the next free one, rather than
send late into the next one's second.
"""

from __future__ import annotations

import time
from datetime import datetime

from redis import Redis
from rq import get_current_job

from core.platform.config import Settings, settings

from . import queues

HOLD = 1.0  # a delivery job waits in place for a slot this near; later ones are scheduled
LATE_OK = 1.0  # a carried slot missed by more (the workers were busy) is given up for a new one
# A sender that wakes up later than this after its slot gives the slot up. Slots are
# PACE_MARGIN wider than 1/rate, so texts may reach the provider up to PACE_MARGIN
# seconds (less LATE) later than the ones before them and still never pack a second.
LATE = 0.010
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
    def __init__(self, redis: Redis, channel: str, rate: float, margin: float):
        self.key = f"ledgersync:pace:{channel}"
        self.interval_us = int(1_000_000 * (1 + margin) / rate)
        self._reserve = redis.register_script(RESERVE)

    def reserve(self) -> float:
        """Seconds until this caller's slot."""
        return int(self._reserve(keys=[self.key], args=[self.interval_us])) / 1_000_000

    def wait_turn(self, tries: int = 5) -> float:
        """Wait for a slot; one woken up more than LATE after it is given up for the
        next (after `tries`, the last one is used)."""
        waited = 0.0
        for _ in range(tries):
            ahead = self.reserve()
            slot = time.monotonic() + ahead
            if ahead > 0:
                time.sleep(ahead)
            waited += max(ahead, 0.0)
            if time.monotonic() - slot <= LATE:
                break
        return waited


def pace(redis: Redis, channel: str) -> Pace | None:
    rate = rate_for(channel)
    return Pace(redis, channel, rate, settings().pace_margin) if rate else None


def reserve(redis: Redis, channel: str) -> float | None:
    """The next free slot of the channel, reserved, as a Unix time; None when the
    channel has no pace (firm notices)."""
    paced = pace(redis, channel)
    return time.time() + paced.reserve() if paced is not None else None


def until(slot: float | None) -> None:
    """Sleep until a reserved slot (a second at most: later ones are scheduled)."""
    if slot is not None and slot > time.time():
        time.sleep(slot - time.time())


# --- a delivery job's slot ----------------------------------------------------------------


def slot_for(channel: str, carried: float | None, held: datetime | None) -> float | None:
    """The slot to send in: the one the job carries, else the one the message already
    holds (`held`: a second job for it — the sweep's, a duplicate — reserves no other),
    else a new one. A retry after a refusal always takes a new one; so does a carried
    slot missed by more than LATE_OK (under overload a text slips rather than bunch)."""
    if _retrying():
        return reserve(queues.connection(), channel)
    if carried is not None and time.time() - carried <= LATE_OK:
        return carried
    if held is not None:
        return held.timestamp()
    return reserve(queues.connection(), channel)


def too_far(slot: float | None) -> bool:
    """More than HOLD away: the job comes back for it (RQ's scheduler) rather than hold
    a worker that staff's answers may be waiting for."""
    return slot is not None and slot - time.time() > HOLD


def _retrying() -> bool:
    """This run is RQ retrying a failed one: the provider wants us to slow down, so
    the old slot is not reused."""
    job = get_current_job()
    return job is not None and job.retries_left is not None and \
        job.retries_left < queues.DELIVERY_RETRY.max


def take_turn(channel: str) -> None:
    """Wait for this channel's next slot (a bulk run's sender)."""
    paced = pace(queues.connection(), channel)
    if paced is not None:
        paced.wait_turn()
