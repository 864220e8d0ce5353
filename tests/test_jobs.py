"""Jobs against the real Redis: scheduling, idempotency, Redis loss, real workers."""

from __future__ import annotations

import math
import time
from datetime import timedelta

import pytest
from rq import Queue
from rq.registry import ScheduledJobRegistry

import wiring
from core import ports
from core.invitations import invites, links, sweep
from core.platform import config, tokens
from core.records import Invite, Message
from jobs import queues, tasks
from jobs.worker import LedgerSyncWorker
from tests.helpers import start_worker, stop, wait_for, worker_env


@pytest.fixture
def rq_installed(database, redis_conn, settings):
    assert wiring.use_queue(settings)
    yield redis_conn
    wiring.inline()


def auto_reminders(invite=None):
    rows = Message.select().where(Message.kind == "auto_reminder")
    return rows.where(Message.invite == invite) if invite else rows


def test_sending_an_invite_enqueues_delivery_and_schedules_reminder_and_expiry(
        clock, maria, rq_installed):
    sent = invites.send(maria, "sms")
    assert sent.message.status == "pending"
    high = Queue("high", connection=rq_installed)
    assert high.count == 1
    scheduled = ScheduledJobRegistry(queue=Queue("default", connection=rq_installed))
    times = {job_id: scheduled.get_scheduled_time(job_id) for job_id in scheduled.get_job_ids()}
    invite = sent.invite
    assert times == {f"remind-{invite.id}": invite.reminder_due_at.replace(microsecond=0),
                     f"expire-{invite.id}": invite.expires_at.replace(microsecond=0)}
    LedgerSyncWorker([high], connection=rq_installed).work(burst=True)
    assert sent.message.refreshed().status == "delivered"


def test_a_bulk_runs_invites_are_caught_up_not_scheduled_one_by_one(clock, firm, rq_installed):
    """Inside `schedule.held` (a bulk slice) no job is scheduled per invite; the slice
    asks for one catch-up each, at the latest reminder and expiry, and each catch-up
    does every one then due, once, however many batches it takes."""
    from core.invitations import bulk_plan, bulk_sending, clients, schedule

    for i in range(3):
        clients.add(firm, f"Bulk {i}", email=f"bulk{i}@example.com")
    plan = bulk_plan.prepare(firm, "not_invited")
    bulk_sending.confirm(plan.run.id)
    wanted = []
    with schedule.held(wanted):
        while bulk_sending.send_next(plan.run.id).result == "sent":
            pass
    tasks._catch_up(wanted)
    scheduled = ScheduledJobRegistry(queue=Queue("default", connection=rq_installed))
    invite = Invite.select().order_by(Invite.id.desc()).first()
    assert len(wanted) == 6 and sorted(scheduled.get_job_ids()) == [
        f"expire-due-{math.ceil(invite.expires_at.timestamp())}",
        f"remind-due-{math.ceil(invite.reminder_due_at.timestamp())}"]
    clock.shift(timedelta(days=3))
    assert sweep.catch_up("remind", batch=2).done == 3
    assert tasks.catch_up("remind") == "0 remind"
    assert auto_reminders().count() == 3
    clock.shift(timedelta(days=2))
    assert tasks.catch_up("expire") == "3 expire"
    assert Invite.select().where(Invite.expired_at.is_null()).count() == 0


def test_a_backlog_of_reminders_is_worked_in_slices_each_a_job_of_its_own(
        clock, firm, rq_installed, monkeypatch):
    """More reminders due than a sweep's batch: the sweep does one batch and hands the
    rest to a catch-up job; a catch-up that runs out of its slice with more due queues
    the next slice at once (a job's timeout never cuts a backlog short); every
    reminder goes once."""
    from core.invitations import clients

    for i in range(5):
        invites.send(clients.add(firm, f"Due {i}", email=f"due{i}@example.com"), "email")
    clock.shift(timedelta(days=3))
    default = Queue("default", connection=rq_installed)
    default.empty()
    report = sweep.run(batch=2)
    assert (report.reminders, report.backlog) == (2, ("remind",))
    assert [job.func_name for job in default.jobs] == []  # (the sweep job asks for it)
    monkeypatch.setattr(sweep, "BATCH", 1)
    monkeypatch.setattr(tasks, "CATCH_UP_SLICE", -1.0)  # each slice ends after one batch
    assert tasks.catch_up("remind") == "1 remind (more to come)"
    assert [(job.func_name, job.args) for job in default.jobs] == [
        ("jobs.tasks.catch_up", ("remind",))]
    LedgerSyncWorker([default], connection=rq_installed).work(burst=True)
    assert auto_reminders().count() == 5
    assert default.count == 0


def test_jobs_are_idempotent(clock, maria, rq_installed):
    invite = invites.send(maria, "email").invite
    tasks.deliver(Message.get(Message.invite == invite).id)
    clock.shift(timedelta(days=3))
    assert tasks.remind(invite.id).startswith("sent")
    assert tasks.remind(invite.id).startswith("done")
    clock.shift(timedelta(days=2))
    assert tasks.expire(invite.id) == "expired"
    assert tasks.expire(invite.id) == "nothing to do"
    assert auto_reminders(invite).count() == 1
    assert Message.select().where(Message.kind == "notice_expired").count() == 1


def test_redis_flushed_the_sweep_does_everything_once(clock, maria, rq_installed):
    invite = invites.send(maria, "email").invite
    rq_installed.flushdb()
    clock.shift(timedelta(days=3, minutes=11))
    report = sweep.run()
    assert (report.reminders, report.expired) == (1, 0)
    LedgerSyncWorker([Queue(n, connection=rq_installed) for n in queues.QUEUES],
                 connection=rq_installed).work(burst=True)
    clock.shift(timedelta(days=2))
    rq_installed.flushdb()  # the reminder's delivery job is lost too
    report = sweep.run()
    assert report.expired == 1
    wiring.inline()  # deliver inline from here
    assert sweep.run().redispatched == 0  # the notice may still be on its way
    clock.shift(timedelta(minutes=11))
    assert sweep.run().redispatched == 1
    assert str(sweep.run()) == "0 reminders, 0 expiries, 0 re-dispatched, 0 recovered"
    reminder = auto_reminders(invite).get()
    assert reminder.status == "delivered"
    assert Message.get(Message.kind == "notice_expired").status == "delivered"


def test_a_worker_killed_mid_send_is_recovered_by_the_sweep(clock, maria, database):
    from core.messaging import deliveries

    lost = ports.current().with_(dispatcher=lambda ids: None)  # the job is lost with its worker
    ports.install(lost)
    sent = invites.send(maria, "email")
    ports.install(ports.current().with_(dispatcher=deliveries.deliver_now))
    Message.update(status="sending", attempts=1).where(Message.id == sent.message.id).execute()
    clock.shift(timedelta(minutes=5))
    assert sweep.run().recovered == 0  # might still be sending
    clock.shift(timedelta(minutes=6))
    assert sweep.run().recovered == 1
    assert sent.message.refreshed().status == "delivered"
    assert sent.message.refreshed().attempts == 2


def test_an_accepted_invite_gets_no_reminder_from_a_stale_job(clock, maria, rq_installed):
    invite = invites.send(maria, "sms").invite
    links.accept(tokens.unseal(invite.token_sealed))
    clock.shift(timedelta(days=3))
    assert tasks.remind(invite.id).startswith("skipped")
    assert auto_reminders().count() == 0


@pytest.mark.slow
def test_a_real_worker_sends_one_reminder_then_expires_the_invite(
        sqlite_database, tmp_path, settings_for_workers):
    settings = settings_for_workers
    env = worker_env(settings, INVITE_TTL="6s", REMINDER_AFTER="2s")
    worker = start_worker(env, tmp_path, "worker")
    try:
        from core.firms import firms
        from core.invitations import clients

        firm = firms.create("Smith & Co", admin_email="a@s.example", admin_password="x" * 12)
        client = clients.add(firm, "Maria Gonzalez", email="maria@example.com")
        invite = invites.send(client, "email").invite
        assert wait_for(lambda: Invite.get_by_id(invite.id).expired_at is not None), \
            (tmp_path / "worker.log").read_text()[-3000:]
        assert wait_for(lambda: Message.select().where(
            Message.status == "delivered").count() == 3)
    finally:
        stop(worker)
    kinds = sorted(m.kind for m in Message.select())
    assert kinds == ["auto_reminder", "invite", "notice_expired"]
    reminder = auto_reminders().get()
    assert reminder.created_at - invite.sent_at >= timedelta(seconds=2)
    assert "Reminder: Smith & Co is waiting" in reminder.subject


@pytest.fixture
def settings_for_workers(sqlite_database, redis_conn, tmp_path):
    settings = config.settings().with_(invite_ttl=timedelta(seconds=6),
                                       reminder_after=timedelta(seconds=2), quiet_hours=None)
    config.use(settings)
    assert wiring.use_queue(settings)
    yield settings
    wiring.inline()


def test_a_reminder_due_in_quiet_hours_is_rescheduled_for_the_morning(clock, firm, rq_installed):
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from core.invitations import clients

    ny = ZoneInfo("America/New_York")
    clock.move_to(datetime(2026, 11, 23, 23, 0, tzinfo=ny))
    client = clients.add(firm, "Night Owl", phone="(212) 555-0140")
    invite = invites.send(client, "sms").invite
    clock.shift(timedelta(days=3))
    assert tasks.remind(invite.id) == "deferred quiet hours"
    morning = datetime(2026, 11, 27, 8, 0, tzinfo=ny).astimezone(UTC)
    scheduled = ScheduledJobRegistry(queue=Queue("default", connection=rq_installed))
    assert scheduled.get_scheduled_time(f"remind-{invite.id}") == morning
    assert invite.refreshed().reminder_due_at == morning
    assert auto_reminders().count() == 0


def test_a_text_waiting_for_its_slot_holds_no_worker_and_keeps_its_slot(
        database, firm, rq_installed, settings):
    """A text every 4 seconds: three invites at once. The first text goes now; the
    others keep the slots reserved for them and come back for them (RQ's scheduler)
    instead of a worker sleeping; a second job for one of them (the sweep's, a
    duplicate) reserves no other slot; the sweep never sends one before its slot.
    (At SMS_RATE 1 the second slot was only 25 ms beyond what a worker waits for in
    place, so a busy machine sent it at once: the slots are 4 s apart here.)"""
    config.use(settings.with_(sms_rate=0.25))
    from core.invitations import clients
    from core.messaging import outbound

    sent = [invites.send(clients.add(firm, f"Client {i}", phone=f"+1212555010{i}"), "sms")
            for i in range(3)]
    high = Queue("high", connection=rq_installed)
    LedgerSyncWorker([high], connection=rq_installed).work(burst=True)
    first, *waiting = [s.message.refreshed() for s in sent]
    assert first.status == "delivered"
    assert [m.status for m in waiting] == ["pending", "pending"]
    assert all(m.not_before is not None for m in waiting)
    paced = Queue("paced", connection=rq_installed)
    assert len(ScheduledJobRegistry(queue=paced)) == 2  # to come back just before their slots
    pace = rq_installed.get("ledgersync:pace:sms")

    outbound.dispatch(waiting[1])  # a second job for the last one
    LedgerSyncWorker([high], connection=rq_installed).work(burst=True)
    assert rq_installed.get("ledgersync:pace:sms") == pace  # no slot reserved twice
    before_slots = min(m.refreshed().not_before for m in waiting) - timedelta(milliseconds=1)
    assert sweep.run(before_slots, pending_grace=timedelta(0)).redispatched == 0  # not yet

    def all_sent():
        LedgerSyncWorker([paced, high], connection=rq_installed).work(burst=True,
                                                                  with_scheduler=True)
        return all(m.refreshed().status == "delivered" for m in waiting)

    assert wait_for(all_sent, timeout=60)
    times = sorted(m.refreshed().sent_at for m in [first, *waiting])
    assert all(b - a >= timedelta(seconds=3.9) for a, b in zip(times, times[1:], strict=False))


def hang() -> None:
    """A job that never ends by itself (a provider that never answers)."""
    time.sleep(600)


def test_a_hung_job_is_stopped_by_its_timeout_in_the_workers_own_process(rq_installed):
    """`ledgersync worker` runs jobs in its own process (SimpleWorker, no fork per job):
    RQ's alarm still stops one that overruns its `job_timeout`, and the worker goes on."""
    queue = Queue("high", connection=rq_installed)
    hung = queue.enqueue(hang, job_timeout=1)
    after = queue.enqueue(noop)
    started = time.monotonic()
    LedgerSyncWorker([queue], connection=rq_installed).work(burst=True)
    assert time.monotonic() - started < 60  # not the job's 600 s
    assert hung.get_status(refresh=True) == "failed"
    assert "JobTimeoutException" in (hung.latest_result().exc_string or "")
    assert after.get_status(refresh=True) == "finished"


def noop() -> None:
    pass


def test_a_worker_keeps_its_connection_and_replaces_a_dead_one(pg_database, pg_url, monkeypatch):
    """Jobs keep one connection per worker process (`db.kept`); one the server dropped
    is found dead by the check before use and replaced, so the next job still runs.
    (PostgreSQL only: a server that drops the connection.)"""
    import psycopg

    from core.platform import db

    def backend() -> int:
        with db.kept():
            return db.database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]

    first = backend()
    assert backend() == first  # kept from one unit of work to the next
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    monkeypatch.setattr(db, "IDLE_CHECK", 0.0)  # as after IDLE_CHECK seconds unused
    assert backend() not in {first, None}
