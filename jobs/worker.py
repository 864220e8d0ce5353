"""The worker classes `ledgersync worker` runs: RQ's own, with what every job needs
around it — the request id it was enqueued under (and its firm, and its own id) bound
for its log lines and error reports, and its duration and outcome counted by kind
(`ops.metrics`: `ledgersync_jobs_total`, `ledgersync_job_duration_seconds`); the
jobs taken from `high` are counted by the second, so a web process can tell how fast
Slack's answers drain (`queues.backlog`).

Both are done in the worker's own process, around `execute_job`: with the forking
worker too, the counts stay in the process whose metrics are served (a child that
exits would take its counts with it), and the child inherits the bound ids.

`SimpleWorker` runs each job in the worker's own process (the default: forking one
a job cost most of a job's time, bench/jobs.py); `ForkingWorker` forks one a job
(`--fork`, for isolation).
"""

from __future__ import annotations

import contextlib
import time

from redis import RedisError
from rq import SimpleWorker, Worker
from rq.exceptions import InvalidJobOperation

from ops import context, metrics

from . import queues
from .queues import context_of

LISTEN_WAKE = 1.0  # seconds: how often the thread listening for RQ's commands wakes
DRAIN_COUNTED = {"high"}  # queues whose jobs taken are counted (`queues.backlog`)


class _Observed:
    outcome_in_redis = False  # the job ran elsewhere (a forked child): read its outcome back

    def subscribe(self):
        """RQ's own, but its listening thread wakes every LISTEN_WAKE seconds rather
        than 60: stopping the worker waits for that thread (redis-py 8), which made a
        worker's exit take up to a minute now and then."""
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=LISTEN_WAKE, daemon=True,
            exception_handler=self._pubsub_exception_handler)

    def execute_job(self, job, queue):
        started = time.perf_counter()
        if queue.name in DRAIN_COUNTED:
            with contextlib.suppress(RedisError):
                queues.taken(queue.name, self.connection)
        with context.bound(**context_of(job)):
            try:
                return super().execute_job(job, queue)
            finally:
                metrics.job_ran(_kind(job), _outcome(job, self.outcome_in_redis),
                                time.perf_counter() - started)


def _kind(job) -> str:
    try:
        return job.func_name or "unknown"
    except Exception:  # noqa: BLE001 - a job whose data can't be read is still counted
        return "unknown"


def _outcome(job, refresh: bool) -> str:
    try:
        return job.get_status(refresh=refresh).value
    except (InvalidJobOperation, AttributeError):  # gone already (no result kept)
        return "unknown"


class LedgerSyncWorker(_Observed, SimpleWorker):
    pass


class ForkingWorker(_Observed, Worker):
    outcome_in_redis = True  # the child recorded it


def worker_class(fork: bool = False) -> type[Worker]:
    return ForkingWorker if fork else LedgerSyncWorker
