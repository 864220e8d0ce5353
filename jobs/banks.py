"""Bank data's jobs: a connection's sync, an automatic reconnect invite in the
client's morning, and the bank sweep. Each loads its state by id and calls core, and
is idempotent: a sync applies its changes once (the cursor's conditional update), an
automatic invite goes once a break. Like every job (`tasks.unit_of_work`), each keeps
the worker's database connection from job to job.

With a queue, `wiring.use_queue` puts `request_sync` and `schedule_auto_invite` in
core's ports; a process without one (Redis away, tests) syncs at the moment it is
asked, and leaves automatic invites to the sweep.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from redis import RedisError
from rq import Retry

from core.banking import banks, connections, reconnects

from . import queues
from .tasks import unit_of_work

log = logging.getLogger(__name__)
SYNC_RETRY = Retry(max=3, interval=[60, 600, 3600])
STALE_AFTER = timedelta(hours=23)  # the sweep (hourly) syncs each connection once a day
OPTIONS = {"job_timeout": 600, "result_ttl": 300, "failure_ttl": 7 * 86400}


def request_sync(connection_id: int) -> None:
    """The `sync_runner` port with a queue: a sync job."""
    try:
        queues.queue("default").enqueue("jobs.banks.sync", connection_id, retry=SYNC_RETRY,
                                        **OPTIONS)
    except RedisError:
        log.warning("Redis refused the sync of connection %s; the sweep will do it",
                    connection_id)


def schedule_auto_invite(connection_id: int, when: datetime) -> None:
    """The `reconnect_scheduler` port with a queue: the invite's job at its time."""
    try:
        queues.queue("default").enqueue_at(when + timedelta(seconds=1), "jobs.banks.auto_invite",
                                           connection_id, job_id=f"auto-invite-{connection_id}",
                                           **OPTIONS)
    except RedisError:
        log.warning("Redis refused the reconnect invite of connection %s; the sweep will "
                    "send it", connection_id)


@unit_of_work
def sync(connection_id: int) -> str:
    """Sync one connection's accounts and transactions; a passing failure at the
    provider raises, so RQ tries again later."""
    try:
        report = connections.sync(connection_id)
    except banks.ProviderError as problem:
        if problem.transient:
            raise
        log.warning("sync of connection %s refused: %s", connection_id, problem)
        return f"refused: {problem}"
    return str(report)


@unit_of_work
def auto_invite(connection_id: int) -> str:
    return reconnects.send_due(connection_id)


@unit_of_work
def sweep() -> str:
    """Hourly (`ledgersync cron`): a sync for each working connection not synced for a
    day, and the automatic reconnect invites that are due and were not sent."""
    asked = connections.sync_all(stale_after=STALE_AFTER)
    invited = [reconnects.send_due(c) for c in reconnects.due()]
    return f"{asked} syncs asked for, {invited.count('sent')} reconnect invites sent"
