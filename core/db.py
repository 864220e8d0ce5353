"""The database handle: one proxy, bound at start-up to `DATABASE_URL`.

SQLite (the embedded default) runs in WAL mode with foreign keys on, so web and
worker processes can share the file; PostgreSQL is used in production.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from urllib.parse import urlparse

from peewee import Database, DatabaseProxy, InterfaceError, OperationalError, SqliteDatabase
from playhouse.db_url import connect as connect_url

database = DatabaseProxy()

SQLITE_PRAGMAS = {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10000}


def open_database(url: str) -> Database:
    """A peewee Database for a URL (`sqlite:///path`, `postgresql://…`)."""
    scheme = urlparse(url).scheme
    if scheme.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # BEGIN IMMEDIATE: a transaction takes the write lock up front, so two
        # processes wait for each other (busy_timeout) instead of failing at once.
        return connect_url(url, pragmas=SQLITE_PRAGMAS, lock_type="IMMEDIATE")
    if scheme.startswith(("postgres", "postgresql")):
        return connect_url(url.replace("postgres://", "postgresql://", 1))
    return connect_url(url)


def bind(url: str) -> Database:
    """Point the proxy at `url` (closing any previous binding) and return the database."""
    previous = database.obj
    if previous is not None and not previous.is_closed():
        previous.close()
    db = open_database(url)
    database.initialize(db)
    return db


def is_sqlite() -> bool:
    return isinstance(database.obj, SqliteDatabase)


@contextlib.contextmanager
def connection():
    """Open a connection for a unit of work (a job, a CLI command) and close it after."""
    opened = database.connect(reuse_if_open=True)
    if opened:
        database.obj._state.pid = os.getpid()
    try:
        yield database
    finally:
        if opened and not database.is_closed():
            database.close()


IDLE_CHECK = 10.0  # seconds unused after which a kept connection is pinged before use


@contextlib.contextmanager
def kept():
    """For a worker's unit of work (a job): the connection outlives it — one per
    process and thread, opened once, not once a job (a PostgreSQL connection costs
    more than most jobs). Before use it is checked: opened in this process (never one
    inherited across a fork), not broken, and, after IDLE_CHECK unused or a failed
    job, answering. After the work no transaction is left open."""
    state = _ensure_alive()
    try:
        yield database
    except BaseException:
        state.check_next = True  # the failure may have been the connection's
        raise
    finally:
        _end_unit(state)


def _ensure_alive():
    state = database.obj._state  # peewee's per-thread connection state
    if getattr(state, "pid", os.getpid()) != os.getpid():
        state.reset()  # inherited across a fork: the parent's, not ours to use or close
    elif not database.is_closed() and (_broken(state.conn) or
                                       (_check_due(state) and not _answers())):
        _drop()
    if database.is_closed():
        database.connect()
    state.pid, state.check_next, state.used = os.getpid(), False, time.monotonic()
    return state


def _check_due(state) -> bool:
    return getattr(state, "check_next", False) or \
        time.monotonic() - getattr(state, "used", 0.0) > IDLE_CHECK


def _broken(conn) -> bool:
    return conn is None or bool(getattr(conn, "broken", False) or getattr(conn, "closed", False))


def _answers() -> bool:
    try:
        database.execute_sql("SELECT 1")
        return True
    except (OperationalError, InterfaceError):
        return False


def _drop() -> None:
    with contextlib.suppress(Exception):  # closing a dead connection may fail too
        database.close()
    database.obj._state.reset()


def _end_unit(state) -> None:
    state.used = time.monotonic()
    if not database.is_closed() and database.in_transaction():
        with contextlib.suppress(Exception):
            database.rollback()
        state.transactions = []


def ping() -> bool:
    try:
        with connection():
            database.execute_sql("SELECT 1")
        return True
    except Exception:  # noqa: BLE001 - health check reports, never raises
        return False
