"""Bank data's jobs against the real Redis: a sync asked for goes to a worker, an
automatic reconnect invite waits for the client's morning on RQ's scheduler, and the
clock registers the bank sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq import Queue, SimpleWorker
from rq.registry import ScheduledJobRegistry

from core import connections, reconnects
from core.models import BankTransaction, Invite
from jobs import banks as bank_jobs
from jobs import cron, queues


@pytest.fixture
def rq_installed(database, redis_conn, settings):
    assert queues.install(settings)
    bank_jobs.install()
    yield redis_conn
    queues.uninstall()
    connections.set_sync_runner(None)
    reconnects.set_scheduler(None)


def test_a_new_connection_is_synced_by_a_worker(clock, maria, rq_installed):
    outcome = connections.add(maria, "chase", "user_good", "pass_good")
    assert not BankTransaction.select().exists()  # asked for, not done in the request
    default = Queue("default", connection=rq_installed)
    assert [job.func_name for job in default.jobs] == ["jobs.banks.sync"]
    SimpleWorker([default], connection=rq_installed).work(burst=True)
    assert BankTransaction.select().exists()
    assert outcome.connection.refreshed().synced_at is not None


def test_an_automatic_invite_at_night_is_scheduled_for_the_morning(clock, maria, rq_installed):
    reconnects.set_automatic(maria.firm, True)
    connection = connections.add(maria, "chase", "user_good", "pass_good").connection
    clock.shift(timedelta(hours=13))  # 23:00 in New York
    assert connections.mark_broken(connection)
    assert reconnects.after_break(connection.refreshed()) == "waiting for the morning"
    scheduled = ScheduledJobRegistry(queue=Queue("default", connection=rq_installed))
    when = scheduled.get_scheduled_time(f"auto-invite-{connection.id}")
    assert when.hour == 13 and when.minute == 0  # 08:00 New York, in UTC (+1 s, rounded)
    clock.shift(timedelta(hours=9, seconds=2))
    assert bank_jobs.auto_invite(connection.id) == "sent"
    assert bank_jobs.auto_invite(connection.id) == "not due, or already done"
    assert Invite.select().where(Invite.purpose == "reconnect").count() == 1


def test_the_clock_runs_the_bank_sweep(redis_conn):
    scheduler = cron.scheduler()
    names = {job.func_name if hasattr(job, "func_name") else str(job.func)
             for job in scheduler.get_jobs()}
    assert any("banks.sweep" in name for name in names), names
