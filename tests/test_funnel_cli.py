"""`ledgersync funnel` and `ledgersync firm set digest`, run as a user runs them (a real
process, its own SQLite file)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.fixture
def run(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "SECRET_KEY": "cli-test-secret", "PUBLIC_BASE_URL": "https://connect.example.com",
           "REDIS_URL": "redis://127.0.0.1:1/0"}

    def ledgersync(*args, ok=True, stdin=None):
        done = subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=tmp_path,
                              input=stdin, capture_output=True, text=True, timeout=60)
        assert "Traceback" not in done.stderr, done.stderr
        assert (done.returncode == 0) == ok, done.stdout + done.stderr
        return done.stdout + done.stderr

    run_ = ledgersync
    run_("db", "upgrade")
    run_("firm", "create", "Smith & Co", "--admin-email", "ann@smith.example",
         "--admin-password-stdin", stdin="correct horse 1\n")
    run_("clients", "add", "Maria Gonzalez", "--phone", "2125550134")
    run_("clients", "add", "Acme Co", "--email", "books@acme.example")
    run_("invite", "maria", "--sms")
    run_("invite", "acme", "--email")
    return ledgersync


def test_the_funnel_on_the_command_line(run):
    out = run("funnel")
    assert "Smith & Co — invite funnel, last 30 days: 2 clients invited" in out
    assert "  Invited         2  ████████████████████ 100%" in out
    assert "  Opened          0" + " " * 25 + "0%" in out
    assert "Time to connect: nobody connected yet." in out
    assert "Link still open                    2  (not stalled yet)" in out
    by = run("funnel", "--by", "channel", "--since", "7d")
    assert "last 7 days" in by
    assert [line.split()[:3] for line in by.splitlines() if line.startswith(("SMS", "Email"))] \
        == [["Email", "1", "1"], ["SMS", "1", "1"]]
    assert run("funnel", "--csv").splitlines() == [
        "group,invited,delivered,opened,accepted,connected,connected_rate,median_hours,"
        "p90_hours", "all,2,2,0,0,0,0.000,,"]
    assert "'30x' is not a period" in run("funnel", "--since", "30x", ok=False)
    assert "'colour' is not one of 'staff', 'channel', 'run'" in run("funnel", "--by", "colour",
                                                                      ok=False)


def test_the_digest_setting(run):
    assert "Smith & Co: digest is now daily." in run("firm", "set", "digest", "daily")
    assert "digest       daily" in run("firm", "set")
    assert "not 'hourly'" in run("firm", "set", "digest", "hourly", ok=False)
