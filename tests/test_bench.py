"""Every script in bench/ runs at a tiny size: it starts (its own Redis and PostgreSQL
database, its stand-ins, its workers and web processes), measures and prints — so a
change of schema or of an API cannot silently break a benchmark. Nothing about speed
is asserted; what is asserted is that it ran to its report and left nothing behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from tests import servers
from tests.conftest import unavailable

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PATIENCE = 600  # seconds: the cap on one script, reached only by a broken one

# Each script, the arguments of its tiny run, and a line its report prints.
TINY = {
    "sweep_due": (["--clients", "300", "--repeats", "2"], "reminders due"),
    "jobs": (["--jobs", "5"], "noop"),
    "bulk_pacing": (["--clients", "20", "--rate", "50", "--workers", "1"], "texts/s"),
    "reminder_burst": (["--clients", "20", "--workers", "1", "--window", "2",
                        "--budget", "120"], "reminders texted: 20 of 20, 0 duplicates"),
    "signin_timing": (["--tries", "3"], "in request"),
    "funnel": (["--invites", "300", "--runs", "2", "--sqlite"], "sqlite"),
    "slack_ack": (["--seconds", "1", "--users", "2", "--workers", "1"], "ours"),
    "slack_rate": (["--rate", "4", "--seconds", "1", "--workers", "1"], "invite   ours"),
    "pages": (["--seconds", "1", "--connections", "2", "--rates", "20"], "open loop"),
}


def test_every_script_in_bench_has_a_tiny_run():
    scripts = {p.stem for p in (ROOT / "bench").glob("*.py")}
    helpers = {"__init__", "servers", "bare_bolt", "bare_pages", "cpu"}
    assert scripts - helpers == set(TINY)


def bench_env() -> dict[str, str]:
    """The test run's environment, less the servers the benchmark must make itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.mark.parametrize("script", sorted(TINY))
def test_a_benchmark_runs_tiny_and_cleans_up(script, tmp_path):
    if servers.problems:
        unavailable("; ".join(servers.problems.values()))
    args, says, tag = *TINY[script], uuid.uuid4().hex
    bench = subprocess.Popen([sys.executable, "-m", f"bench.{script}", *args], cwd=ROOT,
                             env={**bench_env(), "LEDGERSYNC_BENCH_TAG": tag},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = bench.communicate(timeout=PATIENCE)
    finally:
        left = tagged(tag)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert bench.returncode == 0, out[-3000:] + err[-3000:]
    assert left == [], f"left running: {left}"  # workers, web processes, its Redis
    assert says in out, out[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert databases_of(bench.pid) == []  # its own database dropped at its exit


def tagged(tag: str) -> list[int]:
    """Processes whose environment carries the tag: the benchmark's and every one it
    started (workers and web processes in sessions of their own included)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if f"LEDGERSYNC_BENCH_TAG={tag}".encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
    return found


def databases_of(pid: int) -> list[str]:
    server = os.environ.get("TEST_POSTGRES_SERVER") or servers.DEFAULT_PG_SERVER
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                            (f"ledgersync_bench_{pid}_%",))
        return [name for (name,) in rows]


def test_the_cpu_meter_counts_what_its_groups_spend():
    """bench/cpu.py: a process that spins for 0.4 s of CPU during the run counts in its
    group (from its start), one that sleeps beside it in another doesn't; the line a
    benchmark prints gives each group's share of a request."""
    from bench import cpu

    spin = ("import sys, time\nend = time.process_time() + 0.4\n"
            "while time.process_time() < end: pass\nsys.stdin.read()")
    sleeper = subprocess.Popen(["sleep", "600"])
    spinning: list[int] = []
    with cpu.Meter({"spinning": lambda: spinning, "sleeping": cpu.tree(sleeper.pid)}) as meter:
        child = subprocess.Popen([sys.executable, "-c", spin], stdin=subprocess.PIPE)
        spinning.append(child.pid)
        deadline = time.monotonic() + PATIENCE
        while cpu.seconds(child.pid) < 0.4 and time.monotonic() < deadline:
            time.sleep(0.05)
    child.communicate(b"")
    sleeper.kill()
    sleeper.wait()
    assert meter.used["spinning"] >= 0.35
    assert meter.used["sleeping"] < 0.1
    line = meter.line(4)
    assert f"spinning {meter.used['spinning'] * 250:.1f}" in line and "cores carry at most" in line
