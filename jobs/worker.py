"""The worker classes `ledgersync worker` runs: RQ's own, with what every job needs
around it (its metrics, the request id it was enqueued under).

`SimpleWorker` runs each job in the worker's own process (the default: forking one
a job cost most of a job's time, bench/jobs.py); `ForkingWorker` forks one a job
(`--fork`, for isolation).
"""

from __future__ import annotations

from rq import SimpleWorker, Worker


class LedgerSyncWorker(SimpleWorker):
    pass


class ForkingWorker(Worker):
    pass


def worker_class(fork: bool = False) -> type[Worker]:
    return ForkingWorker if fork else LedgerSyncWorker
