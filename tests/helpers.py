"""Helpers for tests that run real worker processes."""

from __future__ import annotations

import collections
import contextlib
import inspect
import os
import re
import signal
import subprocess
import sys
import threading
import time

import wiring


def worker_env(settings, **extra):
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
           "DATABASE_POOLER": settings.database_pooler, "SECRET_KEY": settings.secret_key,
           "PUBLIC_BASE_URL": settings.public_base_url, "QUIET_HOURS": "off"}
    env.update(extra)
    return env


def start_worker(env, tmp_path, name):
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - outlives this function
    return subprocess.Popen([sys.executable, "-m", "cli", "worker"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(process):
    """Kill a worker with everything it started (its scheduler runs as a child)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_for(condition, timeout=40.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return False


def bulk_settled(run_id: int) -> bool:
    """Nothing of bulk run `run_id` is in anyone's hands any more: the run is done or
    canceled, no item is queued, waiting or held by a worker, no text is pending or being
    sent, and no item is still marked sent whose text was refused (a worker turns such an
    item `failed` just after the refusal). From then on nothing of the run can be sent:
    workers only claim queued or waiting items and only deliver pending texts."""
    from core.records import BulkItem, BulkRun, Message

    if BulkRun.get_by_id(run_id).status not in {"done", "canceled"}:
        return False
    if BulkItem.select().where(BulkItem.run == run_id,
                               BulkItem.outcome.in_(["queued", "waiting", "sending"])).exists():
        return False
    if Message.select().where(Message.status.in_(["pending", "sending"])).exists():
        return False
    refused = (BulkItem.select().join(Message, on=(Message.invite == BulkItem.invite))
               .where(BulkItem.run == run_id, BulkItem.outcome == "sent",
                      Message.status.in_(["failed", "canceled"])))
    return not refused.exists()


def slack_listeners_idle(web, timeout: float = 60.0) -> bool:
    """Wait until every Slack listener the app (`web`, its Flask test client) started has
    returned. Bolt answers Slack's request first and runs the listener after, on its
    thread pool; so a test that must know a listener is over (to show it did nothing, or
    before tearing down what it uses) waits here rather than sleeping. One task per pool
    thread meets at a barrier: they can all be there only when no thread is still running
    an earlier listener (the pool starts tasks in the order they were submitted)."""
    pool = _bolt_app(web.application).listener_runner.listener_executor
    size = pool._max_workers  # ThreadPoolExecutor has no public size
    barrier = threading.Barrier(size + 1, timeout=timeout)
    for _ in range(size):
        pool.submit(barrier.wait)
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        return False
    return True


def _bolt_app(flask_app):
    """The Bolt app behind a Flask app: the one its Slack view hands requests to."""
    from slack_bolt.adapter.flask import SlackRequestHandler

    for view in flask_app.view_functions.values():
        for function in {view, inspect.unwrap(view)}:
            for cell in getattr(function, "__closure__", None) or ():
                with contextlib.suppress(ValueError):  # an empty cell
                    if isinstance(cell.cell_contents, SlackRequestHandler):
                        return cell.cell_contents.app
    raise AssertionError("no Bolt app behind this Flask app's views")


def descendants(pid: int) -> list[int]:
    children = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as f:
                children[int(f.read().rsplit(")", 1)[1].split()[1])].append(int(entry))
    found, todo = [], [pid]
    while todo:
        found.extend(children[todo[-1]])
        todo.extend(children[todo.pop()])
    return found


def kill_tree(process):
    """Machine death: the worker, its scheduler and the job it is running."""
    for pid in [process.pid, *descendants(process.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()


def redis_or_skip(url: str):
    """A Redis answering at `url` (the run's own, tests/servers.py); without one the test
    is skipped with the reason — failed under CI."""
    from redis import Redis, RedisError

    from tests import servers
    from tests.conftest import unavailable

    redis = Redis.from_url(url, socket_connect_timeout=2)
    try:
        redis.ping()
    except RedisError as problem:
        shown = url.split("?", 1)[0]
        unavailable(servers.problems.get("redis") or f"Redis not available at {shown}: {problem}")
    return redis


def csrf(page) -> str:
    """The CSRF token of one of our pages' forms."""
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def app_without_redis():
    """The real Flask app on the current settings with Redis away, so work is done in
    the request and a test sees it done."""
    from core.platform import config
    from web import create_app

    app = create_app(config.settings().with_(redis_url="redis://127.0.0.1:1/0"))
    wiring.inline()
    return app


def cli_runner(tmp_path):
    """`ledgersync …` as a user runs it: a real process on its own SQLite file in
    `tmp_path`; what it printed (`ok=False`: it must fail)."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "SECRET_KEY": "cli-test-secret", "PUBLIC_BASE_URL": "https://connect.example.com",
           "REDIS_URL": "redis://127.0.0.1:1/0"}

    def ledgersync(*args, ok=True, stdin=None):
        done = subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=tmp_path,
                              input=stdin, capture_output=True, text=True, timeout=60)
        assert "Traceback" not in done.stderr, done.stderr
        assert (done.returncode == 0) == ok, done.stdout + done.stderr
        return done.stdout + done.stderr

    return ledgersync


@contextlib.contextmanager
def statements_run():
    """The SQL statements run inside the block, on this process's database (a list,
    filled as they run): to hold a query count to what a feature promises."""
    from core.platform import db

    seen: list[str] = []
    bound = db.database.obj
    real = bound.execute_sql

    def counting(sql, *args, **kwargs):
        seen.append(sql)
        return real(sql, *args, **kwargs)

    bound.execute_sql = counting
    try:
        yield seen
    finally:
        del bound.execute_sql


def metric_samples(text: str) -> list:
    """Every sample of a Prometheus text exposition (a `/metrics` answer)."""
    from prometheus_client.parser import text_string_to_metric_families

    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def metric_value(found: list, name: str, **labels) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    return sum(s.value for s in found
               if s.name == name and labels.items() <= s.labels.items())
