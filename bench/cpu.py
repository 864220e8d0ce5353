"""Where a benchmark's CPU goes: the CPU time (user + system) each group of processes
spent during a run, read from Linux's /proc, so a capacity figure can be read as CPU a
request — on a machine whose cores the load, the stand-ins, the web, the workers, Redis
and the database all share, the sum says how many requests a second the cores can
carry at all, however many workers there are.

    with Meter({"web": tree(web.pid), "workers": ...}) as meter:
        ...  # the run
    meter.per(requests)  # {"web": ms a request, ..., "total": ...}

A group is a function returning its process ids (read at the start and at the end, so
a process that starts in between counts from its start); `this process` (the load and
any stand-in thread in it, and a load tool it ran to the end) is always measured.
Elsewhere than Linux, nothing is measured.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

PROC = Path("/proc")
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _comm(pid: int) -> str:
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def _pids() -> list[int]:
    return [int(p.name) for p in PROC.iterdir() if p.name.isdigit()] if PROC.exists() else []


def seconds(pid: int) -> float:
    """CPU seconds the process has used so far (0 when it is gone)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICK if fields else 0.0


def tree(*roots: int) -> Callable[[], list[int]]:
    """The processes `roots` and all their descendants (gunicorn's workers, say)."""
    def pids() -> list[int]:
        children: dict[int, list[int]] = {}
        for pid in _pids():
            fields = _stat(pid)
            if fields:
                children.setdefault(int(fields[1]), []).append(pid)
        found, todo = [], list(roots)
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found
    return pids


def named(name: str, *, arguments: str = "") -> Callable[[], list[int]]:
    """Every process called `name` (`postgres`: the whole server, whoever it serves),
    whose command line contains `arguments` when given (a Redis on one port)."""
    def pids() -> list[int]:
        found = []
        for pid in _pids():
            if _comm(pid) != name:
                continue
            if arguments:
                try:
                    line = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ")
                except OSError:
                    continue
                if arguments.encode() not in line:
                    continue
            found.append(pid)
        return found
    return pids


def redis(url: str) -> Callable[[], list[int]]:
    """The Redis server at `url` (on this machine)."""
    return named("redis-server", arguments=f":{urlsplit(url).port or 6379}")


class Meter:
    """CPU seconds by group between entering and leaving."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]):
        self.groups = groups
        self.used: dict[str, float] = {}

    def _read(self) -> dict[str, dict[int, float]]:
        return {name: {pid: seconds(pid) for pid in find()} for name, find in self.groups.items()}

    def __enter__(self) -> Meter:
        self._start, self._own = self._read(), _own()
        return self

    def __exit__(self, *exc) -> None:
        end = self._read()
        for name, now in end.items():
            before = self._start.get(name, {})
            self.used[name] = sum(max(0.0, s - before.get(pid, 0.0)) for pid, s in now.items())
        self.used["this process"] = _own() - self._own

    def per(self, count: int) -> dict[str, float]:
        """Milliseconds of CPU a request, by group and in total."""
        if not count or not self.used:
            return {}
        shares = {name: 1000 * used / count for name, used in self.used.items()}
        return {**shares, "total": sum(shares.values())}

    def line(self, count: int, cores: int | None = None) -> str:
        """`web 4.1, workers 3.2, … = 10.8 ms CPU a request: 2 cores carry at most 185/s`."""
        shares = self.per(count)
        if not shares or not shares["total"]:
            return "CPU: not measured here"
        cores = cores or os.cpu_count() or 1
        parts = ", ".join(f"{name} {ms:.1f}" for name, ms in shares.items() if name != "total")
        return (f"CPU a request, ms: {parts} = {shares['total']:.1f}: {cores} cores carry at "
                f"most {1000 * cores / shares['total']:,.0f} a second")


def _own() -> float:
    """This process's CPU seconds, its threads' and its children's that ended (a load
    tool run to its end, as `wrk` is)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system
