"""Shared fixtures.

`db` runs a test once on SQLite and once on PostgreSQL (TEST_POSTGRES_URL, default
the local server's `ledgersync_test` database, created when missing). Without a
PostgreSQL server the PostgreSQL half is skipped with the reason, except under CI,
where it fails: CI must prove both.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import psycopg
import pytest
import time_machine

import wiring
from core.platform import config, db
from core.records import ALL_MODELS, SchemaVersion, migrations

pytest_plugins = ["tests.slack_fixtures", "tests.twilio_fixtures", "tests.plaid_fixtures",
                  "tests.browser_helpers"]

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/ledgersync_test")
T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Mon 23 Nov, 10:00 in New York


def make_settings(database_url: str, **changes) -> config.Settings:
    return config.Settings(
        database_url=database_url,
        secret_key="test-secret-key-0123456789abcdef",
        public_base_url="https://connect.example.com",
        redis_url=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13"),
    ).with_(**changes)


def _ensure_pg_database(url: str) -> str | None:
    """Create the test database if needed; the reason it can't be used, or None."""
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
    problem = _ensure_pg_database(PG_URL)
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    bound = db.bind(PG_URL)
    with bound.connection_context():
        tables = [m._meta.table_name for m in [*ALL_MODELS, SchemaVersion]]
        names = ", ".join(f'"{t}"' for t in tables)
        bound.execute_sql(f"DROP TABLE IF EXISTS {names} CASCADE")
        migrations.upgrade()
    bound.close()
    return PG_URL


def _empty_pg():
    names = ", ".join(f'"{m._meta.table_name}"' for m in ALL_MODELS)
    db.database.execute_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("pg_url")


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
