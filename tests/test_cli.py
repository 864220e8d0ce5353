"""The `ledgersync` command, run as a user runs it (a real process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.records import migrations

CSV = "name,email,phone,banks\nAcme Co,books@acme.example,(415) 555-2671,Chase\nNo Phone,,12,\n"


@pytest.fixture
def run(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "SECRET_KEY": "cli-test-secret", "PUBLIC_BASE_URL": "https://connect.example.com",
           "REDIS_URL": "redis://127.0.0.1:1/0"}

    def ledgersync(*args, ok=True, stdin=None):
        done = subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=tmp_path,
                              input=stdin, capture_output=True, text=True, timeout=60)
        assert "Traceback" not in done.stderr, done.stderr
        if ok:
            assert done.returncode == 0, done.stderr
        else:
            assert done.returncode != 0, done.stdout
        return done.stdout + done.stderr

    return ledgersync


def test_newcomer_walkthrough(run, tmp_path):
    assert "already" not in run("db", "upgrade")
    latest = migrations.latest_version()
    assert f"Already at schema version {latest}." in run("db", "upgrade")
    assert "Created Smith & Co" in run("firm", "create", "Smith & Co", "--admin-email",
                                       "ann@smith.example", "--admin-password-stdin",
                                       stdin="correct horse 1\n")
    (tmp_path / "clients.csv").write_text(CSV)
    report = run("clients", "import", "clients.csv")
    assert "row    2  added     Acme Co" in report
    assert "row    3  rejected  No Phone: '12' is not a valid phone number" in report
    assert "1 added, 1 rejected." in report
    assert "Maria Gonzalez" in run("clients", "add", "Maria Gonzalez", "--phone", "2125550134")
    assert "2 clients." in run("clients", "list")
    out = run("invite", "acme", "--sms")
    assert out.startswith("Invited Acme Co by SMS at (415) 555-2671: delivered.")
    outbox = run("outbox")
    assert "Hi Acme, Smith & Co invites you" in outbox
    assert "https://connect.example.com/i/" in outbox
    assert "Error: Acme Co already has a link" in run("invite", "acme", ok=False)
    assert "Invited, not accepted yet" in run("status", "(415) 555-2671")
    assert "Acme Co" in run("pending")
    assert "Revoked Acme Co's access: the link no longer works." in run("revoke", "Acme")
    assert "Smith & Co uses LedgerSync" in run("text-in", "(212) 555-0134", "help")
    assert "Passed to the firm" in run("text-in", "2125550134", "Which bank?")
    assert "You won't get more texts from Smith & Co" in run("text-in", "2125550134", "STOP")
    assert "opted out" in run("invite", "maria", ok=False)


@pytest.mark.parametrize("args,message", [
    (["invite", "nobody"], "Error: No client matches 'nobody'"),
    (["invite", "x" * 5000], "Error: No client matches"),
    (["clients", "add", "Bad", "--phone", "555-1234"], "is not a valid phone number"),
    (["clients", "import", "missing.csv"], "No such file or directory"),
])
def test_errors_are_one_clear_line(run, args, message):
    run("db", "upgrade")
    run("firm", "create", "Smith & Co", "--admin-email", "a@s.example",
        "--admin-password-stdin", stdin="correct horse 1\n")
    assert message in run(*args, ok=False)


def test_a_database_not_set_up_says_what_to_run(run):
    assert "run `ledgersync db upgrade`" in run("clients", "list", ok=False)


def test_help_everywhere(run):
    for args in (["--help"], ["invite", "--help"], ["clients", "import", "--help"]):
        assert "Usage:" in run(*args)


def test_module_entry_point_exists():
    assert (Path(__file__).parents[1] / "cli" / "__main__.py").exists()
