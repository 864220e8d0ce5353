"""The database handle: one proxy, bound at start-up to `DATABASE_URL`.

SQLite (the embedded default) runs in WAL mode with foreign keys on, so web and
worker processes can share the file; PostgreSQL is used in production.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from urllib.parse import urlparse

from peewee import Database, DatabaseProxy, SqliteDatabase
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
    try:
        yield database
    finally:
        if opened and not database.is_closed():
            database.close()


def ping() -> bool:
    try:
        with connection():
            database.execute_sql("SELECT 1")
        return True
    except Exception:  # noqa: BLE001 - health check reports, never raises
        return False
