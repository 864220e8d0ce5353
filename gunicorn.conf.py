"""Gunicorn's settings for the `web` process, read from the working directory by the
Procfile's command line (which still sets the bind, workers and threads).

- Metrics across workers: each worker keeps its numbers in files in one directory,
  made fresh by this master (PROMETHEUS_MULTIPROC_DIR; set it yourself to choose
  where, and it is emptied at start), so `/metrics` adds every worker up. Set here,
  before a worker imports prometheus-client, and removed when gunicorn exits.
- METRICS_PORT: the master serves the same metrics on METRICS_ADDR (127.0.0.1 by
  default) — for a scraper on a private network, without a token.
- LOG_FORMAT=json: gunicorn's own lines and its access log as JSON (`ops.logs`).

Without METRICS_PORT or LOG_FORMAT it changes nothing a request sees.
"""

import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "ledgersync-metrics-"


def _fresh_dir() -> str:
    """A new directory for this master's workers, named after it; those of masters
    that died without cleaning up (SIGKILL) go."""
    for old in Path(tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        master = old.name.removeprefix(PREFIX).split("-")[0]
        if master.isdigit() and not _alive(int(master)):
            shutil.rmtree(old, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_ours = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _ours:  # a reload (HUP) reads this file again: the directory stays
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _fresh_dir()
_metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])

if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    from ops.logs import gunicorn_logconfig

    logconfig_dict = gunicorn_logconfig()
    access_log_format = ('%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" '
                         'request_id=%({x-request-id}o)s')


def on_starting(server):
    """Before the first worker: a directory set from outside is emptied of an earlier
    run's files (ours is new)."""
    _metrics_dir.mkdir(parents=True, exist_ok=True)
    if not _ours:
        for stale in _metrics_dir.glob("*.db"):
            stale.unlink()


def when_ready(server):
    from core.platform import config
    from jobs import queues
    from ops import metrics

    settings = config.settings()
    if settings.metrics_port:
        registry = metrics.scrape_registry(
            metrics.QueueCollector(queues.quick(settings), queues.QUEUES),
            metrics.SettingsCollector(settings))
        metrics.serve_port(settings, registry)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # its live gauges go; its counts stay


def on_exit(server):
    if _ours:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
