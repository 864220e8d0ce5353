"""The long-running processes: `serve` (the web app, with a worker and the sweep beside
it, for development and trying it out), `worker` (RQ, with its scheduler) and `cron`
(the periodic sweep). The Procfile runs the last two as they are and the web app under
gunicorn.

Each stops cleanly on SIGTERM (what systemd, Kubernetes and Heroku send) and SIGINT
(Ctrl-C): a worker finishes the job it is running (RQ's warm shutdown), then exits 0;
the clock exits 0; `serve` stops its web server, then asks its worker and clock to
stop — once each, with SIGTERM — and waits for them, so that none outlives it. Its
helpers run in process groups of their own: a Ctrl-C in the terminal (SIGINT to the
whole foreground group) reaches `serve` alone, and each helper hears of it once, from
`serve`, rather than twice (a second signal is RQ's cold shutdown, which would kill
the job it is running). On Linux a helper is also told when `serve` dies without a
word (SIGKILL): it gets SIGTERM then.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time

import click

from core.platform import config

NO_REDIS = ("Redis is not answering at {url}: start it (`redis-server`), or install it "
            "(`apt-get install redis-server`), or set REDIS_URL")
HELPER_GRACE = 90.0  # seconds a helper may take to finish its job once asked to stop
PR_SET_PDEATHSIG = 1


def serve(host: str, port: int) -> None:
    """The web app (Flask's own server), and a worker and the sweep when Redis answers."""
    from jobs import queues
    from web import create_app

    settings = config.settings()
    helpers: list[subprocess.Popen] = []
    _stop_on(signal.SIGTERM)
    try:
        if queues.available(queues.connection()):
            helpers = [_helper("worker"), _helper("cron")]
            click.echo("Jobs: a worker and the sweep are running (reminders and expiry "
                       "happen).")
        else:
            click.echo("Jobs: " + NO_REDIS.format(url=settings.redis_url)
                       + "; until then reminders and expiry wait.")
        click.echo(f"LedgerSync Connect on http://{host}:{port} "
                   f"(links use {settings.public_base_url})")
        create_app(settings).run(host=host, port=port, debug=False, use_reloader=False)
    except (KeyboardInterrupt, _Stop):
        click.echo("Stopping…", err=True)
    finally:
        _stop_helpers(helpers)


class _Stop(Exception):  # noqa: N818 - a signal, not an error
    """SIGTERM, as an exception in the main thread (as SIGINT is KeyboardInterrupt)."""


def _stop_on(signum: int) -> None:
    def stop(_signum, _frame):
        signal.signal(signum, signal.SIG_IGN)  # once is enough
        raise _Stop

    signal.signal(signum, stop)


def _helper(command: str) -> subprocess.Popen:
    """`ledgersync <command>` in a process group of its own, told of our death."""
    return subprocess.Popen([sys.executable, "-m", "cli", command], start_new_session=True,
                            preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux; else nothing)."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _stop_helpers(helpers: list[subprocess.Popen], grace: float = HELPER_GRACE) -> None:
    """SIGTERM to each helper still running, once; wait for them all (a worker finishes
    its job first); after `grace`, SIGKILL (its job is found again by the sweep)."""
    running = [h for h in helpers if h.poll() is None]
    for helper in running:
        helper.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for helper in running:
        try:
            helper.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(helper.pid, signal.SIGKILL)
            helper.wait()


def work(*, burst: bool = False, fork: bool = False) -> None:
    """An RQ worker on every queue, in their order, with RQ's scheduler. SIGTERM or
    SIGINT: the job it is running is finished first (a second signal kills it)."""
    from rq.exceptions import StopRequested

    from jobs import queues
    from jobs.worker import worker_class

    redis = queues.connection()
    if not queues.available(redis):
        raise click.ClickException(NO_REDIS.format(url=config.settings().redis_url))
    if config.settings().notice_provider == "slack":
        import bot.listeners  # noqa: F401 - Slack answers' code, loaded once, not per job
    worker = worker_class(fork)([queues.queue(n, redis) for n in queues.QUEUES],
                                connection=redis)
    from ops import metrics

    metrics.serve_port(config.settings())  # METRICS_PORT: this worker's own metrics
    # (StopRequested: asked to stop before its loop began, or while it tears down)
    with contextlib.suppress(StopRequested):
        worker.work(burst=burst, with_scheduler=True, logging_level="INFO")


def clock() -> None:
    """RQ cron: the sweep and the bank sweep on their schedules. Exactly one a deployment."""
    from rq.exceptions import StopRequested

    from jobs import cron as jobs_cron
    from jobs import queues

    if not queues.available(queues.connection()):
        raise click.ClickException(NO_REDIS.format(url=config.settings().redis_url))
    with contextlib.suppress(StopRequested):  # a second signal as it registers its end
        jobs_cron.scheduler().start()
