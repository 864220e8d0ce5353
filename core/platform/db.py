"""The database handle: one proxy, bound at start-up to `DATABASE_URL`.

SQLite (the embedded default) runs in WAL mode with foreign keys on, so web and
worker processes can share the file; PostgreSQL is used in production, directly or
through a pooler (`DATABASE_POOLER`). A worker keeps its connection from job to job
(`kept`); the statements every text or job runs are `Prepared` (their SQL written once).

Behind PgBouncer in transaction pooling mode (`DATABASE_POOLER=transaction`) each
transaction may run on another server connection, so nothing may rely on a session:
psycopg's automatic server-side prepared statements are turned off
(`prepare_threshold=None`: "prepared statement _pg3_0 already exists / does not
exist" otherwise), and the code keeps no session state — no SET, no
session advisory lock (the migrations take `pg_advisory_xact_lock`), no LISTEN, no
cursor outliving its transaction.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from urllib.parse import urlparse

from peewee import (
    Database,
    DatabaseProxy,
    InterfaceError,
    ModelNamedTupleCursorWrapper,
    Node,
    OperationalError,
    SqliteDatabase,
)
from playhouse.db_url import connect as connect_url

from core.platform import config

database = DatabaseProxy()

SQLITE_PRAGMAS = {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10000}


POOLERS = {"", "session", "transaction"}


def open_database(url: str, pooler: str = "") -> Database:
    """A peewee Database for a URL (`sqlite:///path`, `postgresql://…`); `pooler` is
    what stands between us and PostgreSQL (`DATABASE_POOLER`)."""
    scheme = urlparse(url).scheme
    if scheme.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # BEGIN IMMEDIATE: a transaction takes the write lock up front, so two
        # processes wait for each other (busy_timeout) instead of failing at once.
        return connect_url(url, pragmas=SQLITE_PRAGMAS, lock_type="IMMEDIATE")
    if scheme.startswith(("postgres", "postgresql")):
        if pooler not in POOLERS:
            raise ValueError(f"unknown pooler {pooler!r}: transaction, session or none")
        # Transaction pooling: no server-side prepared statements (see the docstring).
        options = {"prepare_threshold": None} if pooler == "transaction" else {}
        return connect_url(url.replace("postgres://", "postgresql://", 1), **options)
    return connect_url(url)


def bind(url: str, pooler: str | None = None) -> Database:
    """Point the proxy at `url` (closing any previous binding) and return the database.
    `pooler`: as `open_database`; by default the settings' DATABASE_POOLER."""
    previous = database.obj
    if previous is not None and not previous.is_closed():
        previous.close()
    if pooler is None:
        pooler = config.settings().database_pooler
    db = open_database(url, pooler)
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
    with _unit(state):
        yield database


@contextlib.contextmanager
def kept_if_up():
    """`kept` — or, when the database can't be reached now, nothing (yields None): the
    work then meets the failure itself, where it can say so."""
    try:
        state = _ensure_alive()
    except (OperationalError, InterfaceError):
        yield None
        return
    with _unit(state):
        yield database


@contextlib.contextmanager
def _unit(state):
    try:
        yield
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


# --- statements on hot paths ---------------------------------------------------------------


class Param(Node):
    """A value given when a `Prepared` statement runs (converted as peewee would: by the
    field it is compared with or assigned to, or by `field` when given)."""

    def __init__(self, name: str, field=None):
        self.name, self.field = name, field

    def __sql__(self, ctx):
        converter = self.field.db_value if self.field is not None else ctx.state.converter
        ctx._values.append(_Bound(self.name, converter))
        return ctx.literal(ctx.state.param or "?")


class _Bound:
    __slots__ = ("name", "convert")

    def __init__(self, name, convert):
        self.name, self.convert = name, convert


_NONE = object()


class Prepared:
    """A statement run for every text or job: peewee writes its SQL once per kind of
    database, and each run only binds the `Param` values (writing the SQL anew was a
    third of a bulk text's CPU). Results are peewee's own: models (with their joins)
    for a select or a `returning`, the rows changed for an update or a delete."""

    def __init__(self, query):
        self.query = query
        self._compiled: dict[type, tuple[str, list]] = {}
        self._shape: dict[type, dict] = {}  # how peewee reads its rows (`_reader`)

    def _run(self, values: dict):
        db = database.obj
        compiled = self._compiled.get(type(db))
        if compiled is None:
            compiled = self._compiled[type(db)] = db.get_sql_context().sql(self.query).query()
        sql, params = compiled
        bound = [_bind(p, values) if type(p) is _Bound else p for p in params]
        return db, db.execute_sql(sql, bound)

    def rows(self, **values) -> list:
        """A select's (or a `returning`'s) rows, as the query would give them."""
        db, cursor = self._run(values)
        return list(self._reader(db, cursor))

    def _reader(self, db, cursor):
        """Peewee's reader of the rows, told once how they map onto the models: which
        column goes to which model, through which join, converted how — the same for
        every run of the same SQL, and worked out anew for each by peewee (a third of
        the link page's look-up)."""
        reader = self.query.clone()._get_cursor_wrapper(cursor)
        if cursor.description is None or isinstance(reader, ModelNamedTupleCursorWrapper):
            return reader  # no rows to map; a named tuple's maker holds its first reader
        shape = self._shape.get(type(db))
        if shape is None:
            before = dict(vars(reader))
            reader.initialize()
            shape = {k: v for k, v in vars(reader).items() if before.get(k, _NONE) is not v}
            self._shape[type(db)] = shape
        else:
            vars(reader).update(shape)
        reader.initialized = True
        return reader

    def first(self, **values):
        found = self.rows(**values)
        return found[0] if found else None

    def run(self, **values):
        """What peewee's `execute` gives: rows changed (an update, a delete), the new
        row's id (an insert)."""
        db, cursor = self._run(values)
        query = self.query.clone()
        if getattr(query, "_returning", None):
            cursor = query._get_cursor_wrapper(cursor)
        return query.handle_result(db, cursor)


_INSERTS: dict[tuple, Prepared] = {}


def create(model, **fields):
    """`model.create(**fields)` with its INSERT written once per model and set of
    columns (the defaults are the model's, filled in as `create` fills them)."""
    row = model(**fields)
    data = row.__data__
    if row._meta.auto_increment:
        data.pop(row._meta.primary_key.name, None)
    key = (type(database.obj), model, tuple(data))  # (RETURNING its id, or not)
    insert = _INSERTS.get(key)
    if insert is None:
        columns = {model._meta.fields[name]: Param(name, model._meta.fields[name])
                   for name in data}
        insert = _INSERTS[key] = Prepared(model.insert(columns))
    row._pk = insert.run(**data)
    row._dirty.clear()
    return row


def _bind(param: _Bound, values: dict):
    value = values[param.name]
    return param.convert(value) if param.convert is not None and value is not None else value
