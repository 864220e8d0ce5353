"""The long-running processes: `serve` (the web app, with a worker and the sweep beside
it, for development), `worker` (RQ, with its scheduler) and `cron` (the periodic
sweep). The Procfile runs the last two as they are and the web app under gunicorn.
"""

from __future__ import annotations

import subprocess
import sys

import click

from core.platform import config

NO_REDIS = ("Redis is not answering at {url}: start it (`redis-server`), or install it "
            "(`apt-get install redis-server`), or set REDIS_URL")


def serve(host: str, port: int) -> None:
    """The web app (Flask's own server), and a worker and the sweep when Redis answers."""
    from jobs import queues
    from web import create_app

    settings = config.settings()
    helpers = []
    if queues.available(queues.connection()):
        helpers = [subprocess.Popen([sys.executable, "-m", "cli", "worker"]),
                   subprocess.Popen([sys.executable, "-m", "cli", "cron"])]
        click.echo("Jobs: a worker and the sweep are running (reminders and expiry happen).")
    else:
        click.echo("Jobs: " + NO_REDIS.format(url=settings.redis_url)
                   + "; until then reminders and expiry wait.")
    click.echo(f"LedgerSync Connect on http://{host}:{port} "
               f"(links use {settings.public_base_url})")
    try:
        create_app(settings).run(host=host, port=port, debug=False, use_reloader=False)
    finally:
        for helper in helpers:
            helper.terminate()


def work(*, burst: bool = False, fork: bool = False) -> None:
    """An RQ worker on every queue, in their order, with RQ's scheduler."""
    from jobs import queues
    from jobs.worker import worker_class

    redis = queues.connection()
    if not queues.available(redis):
        raise click.ClickException(NO_REDIS.format(url=config.settings().redis_url))
    if config.settings().notice_provider == "slack":
        import bot.listeners  # noqa: F401 - Slack answers' code, loaded once, not per job
    worker = worker_class(fork)([queues.queue(n, redis) for n in queues.QUEUES],
                                connection=redis)
    worker.work(burst=burst, with_scheduler=True, logging_level="INFO")


def clock() -> None:
    """RQ cron: the sweep and the bank sweep on their schedules. Exactly one a deployment."""
    from jobs import cron as jobs_cron
    from jobs import queues

    if not queues.available(queues.connection()):
        raise click.ClickException(NO_REDIS.format(url=config.settings().redis_url))
    jobs_cron.scheduler().start()
