"""Bank data's jobs against the real Redis: a sync asked for goes to a worker, an
automatic reconnect invite waits for the client's morning on RQ's scheduler (once a
break, however often the provider says it — and again for a new break), and the clock
registers the bank sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq import Queue
from rq.registry import ScheduledJobRegistry

import wiring
from core.banking import connections, provider_events, reconnects
from core.banking.provider_events import BankEvent
from core.invitations import links
from core.platform import clock as core_clock
from core.platform import tokens
from core.records import BankConnection, BankTransaction, Invite
from jobs import banks as bank_jobs
from jobs import cron
from jobs.worker import LedgerSyncWorker


@pytest.fixture
def rq_installed(database, redis_conn, settings):
    assert wiring.use_queue(settings)
    yield redis_conn
    wiring.inline()


def test_a_new_connection_is_synced_by_a_worker(clock, maria, rq_installed):
    outcome = connections.add(maria, "chase", "user_good", "pass_good")
    assert not BankTransaction.select().exists()  # asked for, not done in the request
    default = Queue("default", connection=rq_installed)
    assert [job.func_name for job in default.jobs] == ["jobs.banks.sync"]
    LedgerSyncWorker([default], connection=rq_installed).work(burst=True)
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


def test_a_break_said_again_invites_once_and_a_break_after_a_repair_invites_again(
        clock, maria, rq_installed):
    """The provider's second break of an item is the same body as its first (Plaid's
    ITEM ERROR has no event id or time): the same digest, applied each time."""
    reconnects.set_automatic(maria.firm, True)
    connection = connections.add(maria, "chase", "user_good", "pass_good").connection
    broke = BankEvent("login_required", connection.item_id, "the bank asked to log in again")
    repaired = BankEvent("repaired", connection.item_id)
    scheduled = ScheduledJobRegistry(queue=Queue("default", connection=rq_installed))
    job = f"auto-invite-{connection.id}"
    # 23:00 in New York, then 22:00 the next day (23 hours on); each time, 08:00 after
    for times, to_night, to_morning in ((1, 13, 9), (2, 14, 10)):
        clock.shift(timedelta(hours=to_night))
        for _ in range(3):  # said, and said again (Plaid's retries)
            provider_events.receive("sandbox", "the-same-break-body", broke)
        assert connection.refreshed().status == "needs_reconnect"
        assert [j for j in scheduled.get_job_ids() if j.startswith("auto-invite")] == [job]
        when = scheduled.get_scheduled_time(job)
        assert when.hour == 13 and when > core_clock.now()  # this break's 08:00 New York
        clock.shift(timedelta(hours=to_morning, seconds=2))
        assert bank_jobs.auto_invite(connection.id) == "sent"
        assert bank_jobs.auto_invite(connection.id) == "not due, or already done"
        assert Invite.select().where(Invite.purpose == "reconnect").count() == times
        invite = Invite.select().order_by(Invite.id.desc()).first()
        links.accept(tokens.unseal(invite.token_sealed))  # the client followed it
        provider_events.receive("sandbox", "the-same-repair-body", repaired)
        assert BankConnection.get_by_id(connection.id).status == "active"


def test_the_clock_runs_the_bank_sweep(redis_conn):
    scheduler = cron.scheduler()
    names = {job.func_name if hasattr(job, "func_name") else str(job.func)
             for job in scheduler.get_jobs()}
    assert any("banks.sweep" in name for name in names), names
