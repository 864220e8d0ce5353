"""The periodic process: RQ's own cron enqueues the sweep and the firms' digests
(`jobs/digest.py`) every SWEEP_INTERVAL seconds, and the bank sweep hourly. Run exactly
one (RQ's cron has no lock); each job is idempotent, so a second one would only waste
work."""

from __future__ import annotations

from rq.cron import CronScheduler

from jobs.queues import connection

from . import banks, digest, tasks

SWEEP_INTERVAL = 60
BANK_SWEEP_INTERVAL = 3600  # hourly; each connection is synced once a day (jobs/banks.py)


def scheduler(interval: int = SWEEP_INTERVAL) -> CronScheduler:
    cron = CronScheduler(connection=connection())
    cron.register(tasks.sweep, queue_name="default", interval=interval, job_timeout=600,
                  result_ttl=600)
    cron.register(banks.sweep, queue_name="default", interval=BANK_SWEEP_INTERVAL,
                  job_timeout=600, result_ttl=600)
    cron.register(digest.due, queue_name="default", interval=interval, job_timeout=600,
                  result_ttl=600)
    return cron
