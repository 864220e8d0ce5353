"""As production reaches its servers: PostgreSQL through PgBouncer in transaction
pooling mode, and Redis over TLS (`rediss://`), as managed Redis services require.

Behind PgBouncer a connection's consecutive transactions run on different server
connections (the test's PgBouncer hands them out in turn), so psycopg's automatic
server-side prepared statements break — unless DATABASE_POOLER=transaction, which
turns them off. The main data tests run through it too (`THROUGH_PGBOUNCER` in
tests/conftest.py); here: the failure without the setting, `ledgersync db upgrade`
twice at once, and the throttle, the queues, RQ's scheduler, `ledgersync cron` and
the sending pace over TLS, in real worker processes, against PgBouncer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import peewee
import pytest
from redis import Redis

import wiring
from core.firms import firms
from core.invitations import clients, invites
from core.platform import clock, config, db
from core.records import Event, Firm, Invite, Message, SchemaVersion, migrations
from tests import servers
from tests.conftest import bind_empty, make_settings
from tests.helpers import start_worker, stop, wait_for, worker_env

PATIENCE = 120.0  # seconds: the cap on a wait, for a broken run only


def test_the_run_has_a_redis_and_a_database_of_its_own():
    """Unless TEST_REDIS_URL / TEST_POSTGRES_URL name others, the run started its own
    Redis on a free port and made its own database, and every process it starts is
    told so (tests/servers.py)."""
    redis, database = servers.own()
    if redis:
        assert urlsplit(redis).port != 6379 and os.environ["TEST_REDIS_URL"] == redis
        assert Redis.from_url(redis).config_get("save") == {"save": ""}
    if database:
        name = database.rpartition("/")[2]
        assert name.startswith(f"ledgersync_test_{os.getpid()}_")
        assert os.environ["TEST_POSTGRES_URL"] == database
    assert servers.redis_url() == os.environ.get("TEST_REDIS_URL", servers.UNREACHABLE_REDIS)


def hot_query(times: int = 12) -> int:
    """One statement run as often as a worker runs its own (psycopg prepares it on the
    server from its fifth run)."""
    return sum(Firm.select().where(Firm.id == i).count() for i in range(times))


def test_behind_pgbouncer_prepared_statements_fail_without_the_setting(pg_database,
                                                                       pgbouncer_url):
    servers.fill_pool(pgbouncer_url, 2)  # a busy pool: servers handed out in turn
    db.bind(pgbouncer_url, pooler="")
    with pytest.raises(peewee.ProgrammingError, match='prepared statement "_pg3_'):
        hot_query()
    db.database.close()
    config.use(make_settings(pgbouncer_url, database_pooler="transaction"))
    db.bind(pgbouncer_url)  # DATABASE_POOLER from the settings in force
    assert db.database.obj.connect_params["prepare_threshold"] is None
    assert hot_query() == 0


def test_db_upgrade_through_pgbouncer_twice_at_once_migrates_once(pg_url, pgbouncer_url,
                                                                  tmp_path):
    """Two releases at once, both through the pooler: the second waits for the first
    (a transaction-scoped advisory lock: a session's would be lost between
    transactions) and finds nothing to do."""
    server = pg_url.rpartition("/")[0]
    fresh = servers.create_database(server, prefix="ledgersync_release")
    through = f"{pgbouncer_url.rpartition('/')[0]}/{fresh.rpartition('/')[2]}"
    env = worker_env(make_settings(through, database_pooler="transaction"))
    try:
        releases = [subprocess.Popen([sys.executable, "-m", "cli", "db", "upgrade"], env=env,
                                     cwd=tmp_path, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True) for _ in range(2)]
        said = sorted(release.communicate(timeout=PATIENCE)[0] for release in releases)
        assert [release.returncode for release in releases] == [0, 0], said
        latest = migrations.latest_version()
        assert said[0].startswith(f"Already at schema version {latest}."), said
        assert said[1].startswith(f"created schema version {latest}"), said
        bound = db.bind(fresh, pooler="")
        with bound.connection_context():
            assert [v.version for v in SchemaVersion.select()] == [latest]
        bound.close()
    finally:
        servers.drop_database(fresh)


def test_the_link_throttle_counts_in_the_tls_redis(sqlite_database, tls_redis):
    """Every web process shares the count: it is kept in Redis — over TLS here (were
    Redis unreachable it would count in the process alone, and say 429 all the same)."""
    from web import create_app

    app = create_app(config.settings().with_(redis_url=tls_redis.url))
    web = app.test_client()
    statuses = [web.get(f"/i/{uuid.uuid4().hex}").status_code for _ in range(21)]
    assert statuses[:20] == [404] * 20 and statuses[20] == 429
    redis = Redis.from_url(tls_redis.url)
    assert int(redis.get("ledgersync:link-misses:127.0.0.1")) == 20
    redis.flushdb()
    wiring.inline()


@pytest.mark.slow
def test_over_tls_and_pgbouncer_workers_send_remind_expire_and_sweep(pgbouncer_url, tls_redis,
                                                                      tmp_path):
    """Real worker and clock processes against PgBouncer and a TLS Redis: texts go out
    through the queue at the pace (two a second), each invite's reminder and expiry come
    once from RQ's scheduler, and `ledgersync cron` has the sweep expire an invite that
    had no job (sent while Redis was away)."""
    settings = make_settings(pgbouncer_url, redis_url=tls_redis.url, quiet_hours=None,
                             invite_ttl=timedelta(seconds=10),
                             reminder_after=timedelta(seconds=4), sms_rate=2.0)
    bind_empty(settings)
    firm = firms.create("Secure & Co", admin_email="s@secure.example", admin_password="x" * 12)
    stale = invites.send(clients.add(firm, "Stan Stale", phone="+12125550100"), "sms").invite
    Invite.update(expires_at=clock.now() - timedelta(minutes=1)).where(
        Invite.id == stale.id).execute()  # due, and no job will come for it: the sweep's
    env = worker_env(settings, INVITE_TTL="10s", REMINDER_AFTER="4s", SMS_RATE="2")
    processes = [start_worker(env, tmp_path, "worker"), start_clock(env, tmp_path)]
    try:
        assert wiring.use_queue(config.settings())  # from here on, work goes over TLS
        sent = [invites.send(clients.add(firm, f"Client {i}", phone=f"+1212555020{i}"),
                             "sms").invite for i in range(3)]
        logs = lambda: (tmp_path / "worker.log").read_text()[-3000:]  # noqa: E731
        assert wait_for(lambda: Invite.get_by_id(stale.id).expired_at is not None,
                        PATIENCE), logs()
        assert wait_for(lambda: all(Invite.get_by_id(i.id).expired_at for i in sent),
                        PATIENCE), logs()
        assert wait_for(lambda: not Message.select().where(
            Message.status.in_(["pending", "sending"])).exists(), PATIENCE), logs()
    finally:
        for process in processes:
            stop(process)
        wiring.inline()
    texts = [Message.get(Message.invite == i.id, Message.kind == "invite") for i in sent]
    times = sorted(m.sent_at for m in texts)
    assert all(b - a >= timedelta(seconds=0.45) for a, b in zip(times, times[1:], strict=False))
    for invite in sent:
        kinds = sorted(m.kind for m in Message.select().where(Message.invite == invite.id))
        assert kinds.count("auto_reminder") == 1 and kinds.count("invite") == 1, kinds
        assert Event.select().where(Event.invite == invite.id,
                                    Event.kind == "invite.expired").count() == 1
    assert Event.select().where(Event.invite == stale.id,
                                Event.kind == "invite.expired").count() == 1


def start_clock(env, tmp_path):
    log = open(tmp_path / "clock.log", "w")  # noqa: SIM115 - outlives this function
    return subprocess.Popen([sys.executable, "-m", "cli", "cron"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
