"""The servers a benchmark uses, never another's: BENCH_REDIS_URL and BENCH_POSTGRES_URL
when given — then **emptied** (Redis flushed, the database dropped and made again), so
never point them at data you keep — else a Redis of the benchmark's own on a free port
and a PostgreSQL database of its own (`ledgersync_bench_<pid>_<random>` on
TEST_POSTGRES_SERVER, default the local server), made at first use and gone when the
benchmark exits (tests/servers.py starts them the same way for a test run)."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
from functools import cache

import psycopg
from psycopg import sql
from redis import Redis

from tests import servers


def _cleaned_up_on_sigterm() -> None:
    """Stopped from outside (`kill`, `timeout`): end as on Ctrl-C, so what was started
    is stopped and what was made is dropped (the `atexit` handlers run)."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


@cache
def redis_url() -> str:
    given = os.environ.get("BENCH_REDIS_URL")
    if given:
        Redis.from_url(given).flushdb()
        return given
    own = servers.start_redis()
    atexit.register(own.stop)
    _cleaned_up_on_sigterm()
    return own.url


@cache
def postgres_url() -> str:
    given = os.environ.get("BENCH_POSTGRES_URL")
    if given:
        recreate(given)
        return given
    server = os.environ.get("TEST_POSTGRES_SERVER") or servers.DEFAULT_PG_SERVER
    own = servers.create_database(server, prefix="ledgersync_bench")
    atexit.register(_drop, own)
    _cleaned_up_on_sigterm()
    return own


def recreate(url: str) -> None:
    """Drop the database (whoever is connected) and create it empty."""
    server, _, name = url.rpartition("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        named = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(named))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(named))


def _drop(url: str) -> None:
    with contextlib.suppress(psycopg.Error):
        servers.drop_database(url)
