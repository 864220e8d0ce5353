"""Redis connection, the queues, and what fills core's ports when there is a queue
(`wiring.use_queue`): deliveries, schedules and bulk runs as jobs. Every job takes
the request id (and firm) of the code that enqueued it in its meta (`Queue`), which
the worker binds around it (`jobs.worker`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

import rq
from redis import Redis, RedisError
from rq import Retry

from core.platform.config import Settings, settings
from ops import context

log = logging.getLogger(__name__)

# Workers take them in this order: `paced`, texts and emails whose reserved slot has
# come (released by the scheduler just before it: they must not wait behind anything);
# `high`, what staff and clients are waiting on; then reminders and expiries; then bulk.
QUEUES = ("paced", "high", "default", "bulk")
BULK_CHAINS = 2  # jobs (so workers) that share one bulk run
DELIVERY_RETRY = Retry(max=5, interval=[5, 30, 120, 600, 1800])
KEPT = {"result_ttl": 300, "failure_ttl": 7 * 86400}  # results a while, failures a week
DELIVERY = {"retry": DELIVERY_RETRY, "job_timeout": 120, **KEPT}
SCHEDULED = {"job_timeout": 120, **KEPT}
JOB_OPTIONS = {"deliver": DELIVERY, "remind": SCHEDULED, "expire": SCHEDULED}
CONTEXT = "ledgersync"  # the job meta's key for what it carries of its request


class Queue(rq.Queue):
    """RQ's queue; a job enqueued in a request (or in a job that one enqueued) keeps
    its request id, firm and arrival time in `meta[CONTEXT]` (`ops.context.carried`)."""

    def create_job(self, *args, **kwargs):
        carried = context.carried()
        if carried:
            kwargs["meta"] = {CONTEXT: carried, **(kwargs.get("meta") or {})}
        return super().create_job(*args, **kwargs)


def context_of(job: rq.job.Job) -> dict:
    """What a job carries of its request, and its own id: to bind while it runs."""
    carried = (job.meta or {}).get(CONTEXT)
    return {**(carried if isinstance(carried, dict) else {}), "job_id": job.id}


def connection(config: Settings | None = None) -> Redis:
    return _connection((config or settings()).redis_url)


@cache
def _connection(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)


def quick(config: Settings | None = None) -> Redis:
    """For a request that must answer in time (Slack's 3 s): give up on Redis fast."""
    return _quick((config or settings()).redis_url)


@cache
def _quick(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1)


def queue(name: str = "default", redis: Redis | None = None) -> Queue:
    """The queue `name` on `redis` (default: the settings' Redis), built once."""
    return _queue(name, redis or connection())


@cache
def _queue(name: str, redis: Redis) -> Queue:
    return Queue(name, connection=redis)


def available(redis: Redis) -> bool:
    try:
        return bool(redis.ping())
    except RedisError:
        return False


def enqueue_deliveries(message_ids: list[int], redis: Redis | None = None) -> None:
    """The `dispatcher` port with a queue: a delivery job each, on `high`."""
    try:
        high = queue("high", redis)
        for message_id in message_ids:
            high.enqueue("jobs.tasks.deliver", message_id, **DELIVERY)
    except RedisError:
        log.warning("Redis refused deliveries %s; the sweep will send them", message_ids)


def schedule_at(task: str, invite_id: int, when: datetime, redis: Redis | None = None) -> None:
    """The `scheduler` port: RQ's scheduler brings the job back at `when`."""
    queue("default", redis).enqueue_at(_whole(when), f"jobs.tasks.{task}", invite_id,
                                job_id=f"{task}-{invite_id}", **SCHEDULED)


def run_bulk(run_id: int, redis: Redis | None = None) -> None:
    """The `bulk_runner` port: BULK_CHAINS jobs share the run."""
    for _ in range(BULK_CHAINS):
        queue("bulk", redis).enqueue("jobs.tasks.bulk_send", run_id, job_timeout=600)


DRAIN_SECONDS = 2  # how far back `backlog` counts the jobs taken (whole seconds)
MIN_DRAIN = 10.0  # jobs a second: the least `backlog` assumes the workers take
BACKLOG = """
local head = redis.call('LINDEX', KEYS[1], 0)
local stamp = ''
if head then stamp = redis.call('HGET', 'rq:job:' .. head, 'enqueued_at') or '' end
local now = tonumber(redis.call('TIME')[1])
local taken = 0
for second = now - tonumber(ARGV[1]), now - 1 do
  taken = taken + tonumber(redis.call('GET', KEYS[2] .. ':' .. second) or '0')
end
return {stamp, redis.call('LLEN', KEYS[1]), taken}
"""
TAKEN = """
local key = KEYS[1] .. ':' .. redis.call('TIME')[1]
redis.call('INCR', key)
redis.call('EXPIRE', key, 10)
"""


@dataclass(frozen=True)
class Backlog:
    """A queue's line, as a web process deciding whether to take more work sees it."""

    oldest: float  # seconds the oldest job waiting has waited (0: none waits)
    waiting: int  # jobs waiting
    drained: float  # jobs the workers took from it a second, lately (`taken`)

    @property
    def wait(self) -> float:
        """Seconds a job enqueued now may expect to wait: the oldest's wait so far, or
        the line ahead at the rate the workers have been taking it (never counted
        below MIN_DRAIN a second: a quiet queue's rate says nothing of what the workers
        can do), whichever is longer. A queue filling faster than it drains shows at
        once, not only when its oldest job has grown old."""
        return max(self.oldest, self.waiting / max(self.drained, MIN_DRAIN))


def backlog(name: str, redis: Redis) -> Backlog:
    """Queue `name`'s backlog: one round trip (a script, on Redis's own clock for the
    counts)."""
    stamp, waiting, taken = _script(redis, BACKLOG)(
        keys=[f"rq:queue:{name}", _taken_key(name)], args=[DRAIN_SECONDS])
    oldest = 0.0
    if stamp:
        enqueued = datetime.fromisoformat(stamp.decode().replace("Z", "+00:00"))
        if enqueued.tzinfo is None:
            enqueued = enqueued.replace(tzinfo=UTC)
        oldest = max(0.0, (datetime.now(UTC) - enqueued).total_seconds())
    return Backlog(oldest, int(waiting), int(taken) / DRAIN_SECONDS)


def taken(name: str, redis: Redis) -> None:
    """A worker took a job from queue `name`: counted by Redis's second (kept a few
    seconds), so that `backlog` knows how fast the queue drains."""
    _script(redis, TAKEN)(keys=[_taken_key(name)])


def _taken_key(name: str) -> str:
    return f"ledgersync:taken:{name}"


def _script(redis: Redis, source: str):
    script = _scripts.get((id(redis), source))
    if script is None:
        script = _scripts[(id(redis), source)] = redis.register_script(source)
    return script


_scripts: dict[tuple[int, str], object] = {}


def deliver_at(message_id: int, slot: float, lead: float) -> None:
    """The delivery job again, released about `lead` seconds before its reserved
    slot (RQ's scheduler keeps whole seconds and checks every second: up to a second
    more) to wait the rest of the way in place."""
    when = datetime.fromtimestamp(slot - lead, UTC)
    queue("paced").enqueue_at(when, "jobs.tasks.deliver", message_id, slot, **DELIVERY)


def _whole(when: datetime) -> datetime:
    """RQ keeps whole seconds: rounded up, so a job never runs before it is due."""
    return when + timedelta(microseconds=(1_000_000 - when.microsecond) % 1_000_000)


def catch_up_at(task: str, when: datetime) -> None:
    """One job, at `when`, for every reminder or expiry then due (a bulk run's; one job
    a second at most)."""
    when = _whole(when)
    queue("default").enqueue_at(when, "jobs.tasks.catch_up", task,
                                job_id=f"{task}-due-{int(when.timestamp())}", **SCHEDULED)


def catch_up_now(task: str) -> None:
    """The next slice of a catch-up (or a backlog the sweep found), queued at once."""
    queue("default").enqueue("jobs.tasks.catch_up", task, **SCHEDULED)


def schedule_bulk(run_id: int, when: datetime) -> None:
    queue("bulk").enqueue_at(when + timedelta(seconds=1), "jobs.tasks.bulk_send", run_id,
                             job_id=f"bulk-{run_id}-{int(when.timestamp())}", job_timeout=600)
