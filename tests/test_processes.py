"""The long-running processes stop cleanly on SIGTERM and SIGINT (cli/processes.py):
`ledgersync serve` with its worker and clock, `ledgersync worker` and `ledgersync cron`,
each as its own real process, against the real Redis, with a job running when the
signal comes: the job is done exactly once, no process is left, nothing says
"something went wrong"."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys

import pytest
from rq import Queue

from core.platform import config
from tests.conftest import make_settings
from tests.helpers import descendants, wait_for, worker_env

pytestmark = pytest.mark.slow
JOB_SECONDS = 3.0


def slow_job(path: str, seconds: float) -> str:
    """Run by a worker: note the start, work a while, note the end."""
    import time

    with open(path, "a") as f:
        f.write("started\n")
    time.sleep(seconds)
    with open(path, "a") as f:
        f.write("done\n")
    return "done"


@pytest.fixture
def env(sqlite_database, redis_conn, tmp_path):
    settings = config.settings()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return worker_env(settings.with_(redis_url=make_settings("sqlite://").redis_url),
                      PORT=str(port), PYTHONPATH=os.getcwd())


@pytest.fixture
def start(env, tmp_path):
    """`ledgersync COMMAND` in a process group of its own, as a terminal would start it;
    whatever is left of it when the test ends (a failed one) is killed."""
    started = []

    def run(*command):
        log = open(tmp_path / "out.log", "w")  # noqa: SIM115 - outlives this function
        started.append(subprocess.Popen([sys.executable, "-m", "cli", *command], env=env,
                                        stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True))
        return started[-1]

    yield run
    for process in started:
        for pid in [*descendants(process.pid), process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()


def a_job_running(redis_conn, tmp_path) -> tuple[str, object]:
    """A job enqueued, and a worker started on it (its first line written)."""
    marks = tmp_path / "job.txt"
    job = Queue("high", connection=redis_conn).enqueue(slow_job, str(marks), JOB_SECONDS)
    assert wait_for(lambda: marks.exists() and "started" in marks.read_text(), timeout=90), \
        (tmp_path / "out.log").read_text()[-3000:]
    return marks, job


def stopped_cleanly(process, tree: list[int], tmp_path) -> str:
    """It exited 0, alone, nothing left behind; its output."""
    process.wait(timeout=120)
    output = (tmp_path / "out.log").read_text()
    assert process.returncode == 0, output[-3000:]
    assert [pid for pid in tree if _alive(pid)] == [], output[-3000:]
    assert "something went wrong" not in output.lower()
    assert "Traceback" not in output
    return output


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def done_once(marks, job) -> None:
    assert marks.read_text().splitlines() == ["started", "done"]
    assert job.get_status(refresh=True) == "finished"


@pytest.mark.parametrize("how", ["SIGTERM to serve", "Ctrl-C to its group"])
def test_serve_stops_its_worker_and_clock_and_the_job_is_done_once(start, redis_conn,
                                                                    tmp_path, how):
    serve = start("serve")
    assert wait_for(lambda: len(descendants(serve.pid)) >= 2, timeout=60)
    marks, job = a_job_running(redis_conn, tmp_path)
    tree = [serve.pid, *descendants(serve.pid)]
    if how == "SIGTERM to serve":
        serve.send_signal(signal.SIGTERM)
    else:
        os.killpg(serve.pid, signal.SIGINT)
    stopped_cleanly(serve, tree, tmp_path)
    done_once(marks, job)


def test_a_worker_finishes_its_job_on_sigterm(start, redis_conn, tmp_path):
    worker = start("worker")
    marks, job = a_job_running(redis_conn, tmp_path)
    tree = [worker.pid, *descendants(worker.pid)]
    worker.send_signal(signal.SIGTERM)
    output = stopped_cleanly(worker, tree, tmp_path)
    done_once(marks, job)
    assert "warm shut down requested" in output


def test_the_clock_stops_on_sigterm(start, redis_conn, tmp_path):
    cron = start("cron")
    assert wait_for(lambda: Queue("default", connection=redis_conn).count >= 1, timeout=60)
    tree = [cron.pid, *descendants(cron.pid)]
    cron.send_signal(signal.SIGTERM)
    stopped_cleanly(cron, tree, tmp_path)


def test_a_serve_killed_outright_takes_its_worker_and_clock_with_it(start, redis_conn,
                                                                     tmp_path):
    """SIGKILL gives `serve` no say: its helpers, in groups of their own, are told by
    the kernel (PR_SET_PDEATHSIG) and stop as if asked, the job finished first."""
    serve = start("serve")
    assert wait_for(lambda: len(descendants(serve.pid)) >= 2, timeout=60)
    marks, job = a_job_running(redis_conn, tmp_path)
    helpers = descendants(serve.pid)
    serve.kill()
    serve.wait()
    assert wait_for(lambda: not [pid for pid in helpers if _alive(pid)], timeout=120), \
        (tmp_path / "out.log").read_text()[-3000:]
    done_once(marks, job)
