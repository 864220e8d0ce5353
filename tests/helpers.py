"""Helpers for tests that run real worker processes."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import time


def worker_env(settings, **extra):
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
           "SECRET_KEY": settings.secret_key, "PUBLIC_BASE_URL": settings.public_base_url,
           "QUIET_HOURS": "off"}
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
