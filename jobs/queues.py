"""Redis connection, the queues, and what fills core's ports when there is a queue
(`wiring.use_queue`): deliveries, schedules and bulk runs as jobs. Every job takes
the request id (and firm) of the code that enqueued it in its meta (`Queue`), which
the worker binds around it (`jobs.worker`)."""

from __future__ import annotations

import logging
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


OLDEST_AGE = """
local id = redis.call('LINDEX', KEYS[1], 0)
if not id then return '' end
return redis.call('HGET', 'rq:job:' .. id, 'enqueued_at') or ''
"""


def oldest_age(name: str, redis: Redis) -> float:
    """Seconds the oldest job waiting on queue `name` has waited (0: none waits): one
    round trip."""
    script = _scripts.get(id(redis))
    if script is None:
        script = _scripts[id(redis)] = redis.register_script(OLDEST_AGE)
    stamp = script(keys=[f"rq:queue:{name}"])
    if not stamp:
        return 0.0
    enqueued = datetime.fromisoformat(stamp.decode().replace("Z", "+00:00"))
    if enqueued.tzinfo is None:
        enqueued = enqueued.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - enqueued).total_seconds())


_scripts: dict[int, object] = {}


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
