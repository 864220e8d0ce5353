"""Shared fixtures, and the run's own servers.

Before any test, the run starts a Redis of its own on a free port and creates a
PostgreSQL database of its own (`ledgersync_test_<pid>_<random>`), and exports them as
TEST_REDIS_URL and TEST_POSTGRES_URL to every process a test starts; at the end it
stops the one and drops the other (`tests/servers.py`). Two runs on one machine, or a
developer's own data, never meet. Given TEST_REDIS_URL / TEST_POSTGRES_URL are used
as they are — and emptied by the tests.

`db` runs a test once on SQLite and once on PostgreSQL. Without a PostgreSQL server
(or a redis-server to start) the tests that need one are skipped with the reason,
except under CI, where they fail: CI must prove both.
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime

import pytest
import time_machine

import wiring
from core.platform import config, db
from core.records import ALL_MODELS, SchemaVersion, migrations
from tests import servers

pytest_plugins = ["tests.slack_fixtures", "tests.twilio_fixtures", "tests.plaid_fixtures",
                  "tests.browser_helpers", "tests.api_fixtures"]

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Mon 23 Nov, 10:00 in New York
# The data tests of these modules run a third time, through PgBouncer in transaction
# pooling mode (`pgbouncer_url`): every main data path, as production reaches the database.
THROUGH_PGBOUNCER = {
    "tests.test_invites", "tests.test_reminders_core", "tests.test_jobs", "tests.test_bulk",
    "tests.test_signin", "tests.test_bank_jobs", "tests.test_bank_data",
    "tests.test_client_pages", "tests.test_prepared",
    "tests.test_slack_bulk", "tests.test_clients",
}
POOLED: set[str] = set()  # URLs that reach PostgreSQL through PgBouncer


def pytest_configure():
    servers.start_run()
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        # Stopped from outside (a CI cancel, `timeout`): end as after Ctrl-C, so the
        # run's Redis is stopped and its database dropped.
        signal.signal(signal.SIGTERM, _interrupted)


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def pytest_unconfigure():
    servers.end_run()


def unavailable(problem: str):
    """A server a test needs is missing: skipped with the reason, failed under CI."""
    if os.environ.get("CI"):
        pytest.fail(problem)
    pytest.skip(problem)


def make_settings(database_url: str, **changes) -> config.Settings:
    return config.Settings(
        database_url=database_url,
        secret_key="test-secret-key-0123456789abcdef",
        public_base_url="https://connect.example.com",
        redis_url=servers.redis_url(),
        database_pooler="transaction" if database_url in POOLED else "",
    ).with_(**changes)


def _ensure_pg_database(url: str) -> str | None:
    """Create a given test database if needed; the reason it can't be used, or None."""
    import psycopg

    base, _, name = url.rpartition("/")
    try:
        with psycopg.connect(f"{base}/postgres", autocommit=True, connect_timeout=3) as conn:
            query = "SELECT 1 FROM pg_database WHERE datname = %s"
            exists = conn.execute(query, (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as problem:
        return f"PostgreSQL not available at {base}: {str(problem).strip()[:120]}"
    return None


@pytest.fixture(scope="session")
def pg_url():
    """The run's PostgreSQL database, at today's schema (its tables emptied by each test)."""
    url = servers.postgres_url()
    problem = servers.problems.get("postgres") or _ensure_pg_database(url)
    if problem:
        unavailable(problem)
    bound = db.bind(url, pooler="")
    with bound.connection_context():
        tables = [m._meta.table_name for m in [*ALL_MODELS, SchemaVersion]]
        names = ", ".join(f'"{t}"' for t in tables)
        bound.execute_sql(f"DROP TABLE IF EXISTS {names} CASCADE")
        migrations.upgrade()
    bound.close()
    return url


def _empty_pg():
    names = ", ".join(f'"{m._meta.table_name}"' for m in ALL_MODELS)
    db.database.execute_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@pytest.fixture(scope="session")
def pgbouncer_url(pg_url):
    """The run's database through PgBouncer (transaction pooling, servers in turn)."""
    if not servers.pgbouncer_installed():
        unavailable("PgBouncer is not installed (apt-get install pgbouncer)")
    bouncer = servers.start_pgbouncer(pg_url)
    POOLED.add(bouncer.url)
    yield bouncer.url
    POOLED.discard(bouncer.url)
    bouncer.stop()


@pytest.fixture(scope="module")
def tls_redis():
    """A Redis that speaks TLS only, with a certificate signed by an authority made for
    it; its URL (`rediss://…?ssl_ca_certs=…`) has the client verify both."""
    try:
        redis = servers.start_redis(tls=True)
    except (OSError, RuntimeError) as problem:
        unavailable(f"could not start a TLS Redis: {str(problem)[:300]}")
    yield redis
    redis.stop()


def pytest_generate_tests(metafunc):
    """Data tests (those using `db_url`) run on SQLite and PostgreSQL — and, in the
    modules of THROUGH_PGBOUNCER, on PostgreSQL through PgBouncer too."""
    if "db_url" in metafunc.fixturenames:
        kinds = ["sqlite", "postgres"]
        if metafunc.module.__name__ in THROUGH_PGBOUNCER:
            kinds.append("pgbouncer")
        metafunc.parametrize("db_url", kinds, indirect=True)


@pytest.fixture
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("pgbouncer_url" if request.param == "pgbouncer" else "pg_url")


@pytest.fixture(scope="session", autouse=True)
def wired():
    """Core's ports filled as every process fills them (`wiring`); each test's
    database fixture then chooses inline delivery unless it installs the queue."""
    wiring.inline()


@pytest.fixture(scope="session", autouse=True)
def quick_password_hashing():
    """Argon2 at its production cost takes ~0.3 s a hash; tests use the same
    algorithm at its lowest cost (the CLI tests, in their own processes, don't)."""
    from argon2 import PasswordHasher

    from core.firms import firms

    firms._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def settings(db_url):
    return make_settings(db_url)


@pytest.fixture
def database(settings):
    """A bound, empty, up-to-date database for one test (SQLite and PostgreSQL)."""
    bound = bind_empty(settings)
    yield bound
    wiring.inline()
    if not bound.is_closed():
        bound.close()


def bind_empty(settings):
    config.use(settings)
    wiring.inline()  # no test inherits another's job queue
    bound = db.bind(settings.database_url)
    bound.connect(reuse_if_open=True)
    if settings.database_url.startswith("sqlite"):
        migrations.upgrade()
    else:
        _empty_pg()
    return bound


@pytest.fixture
def pg_database(pg_url):
    """The same, on PostgreSQL only, for what only a database server does (many
    processes on many machines; a server that drops a connection)."""
    bound = bind_empty(make_settings(pg_url))
    yield bound
    wiring.inline()
    if not bound.is_closed():
        bound.close()


@pytest.fixture
def sqlite_database(tmp_path):
    """The same, on SQLite only, for tests that are not about the data layer."""
    settings = make_settings(f"sqlite:///{tmp_path / 'test.db'}")
    config.use(settings)
    wiring.inline()
    bound = db.bind(settings.database_url)
    bound.connect(reuse_if_open=True)
    migrations.upgrade()
    yield bound
    wiring.inline()
    bound.close()


@pytest.fixture
def clock():
    """Time stands still at T0 until the test moves it (`clock.shift(...)`)."""
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def firm(database):
    from core.firms import firms

    return firms.create("Smith & Co", admin_email="ann@smith.example",
                        admin_password="correct horse battery")


@pytest.fixture
def maria(firm):
    from core.invitations import clients

    return clients.add(firm, "Maria Gonzalez", phone="(212) 555-0134",
                       email="maria@example.com")


@pytest.fixture
def redis_conn():
    from tests.helpers import redis_or_skip

    redis = redis_or_skip(make_settings("sqlite://").redis_url)
    redis.flushdb()
    yield redis
    redis.flushdb()
