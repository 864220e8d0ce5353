"""The `ledgersync` command, run as a user runs it (a real process)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.records import migrations
from tests.helpers import cli_runner

CSV = "name,email,phone,banks\nAcme Co,books@acme.example,(415) 555-2671,Chase\nNo Phone,,12,\n"


@pytest.fixture
def run(tmp_path):
    return cli_runner(tmp_path)


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


def test_a_database_not_set_up_says_what_to_run(run, tmp_path):
    said = run("clients", "list", ok=False)
    assert f"No database at {tmp_path / 'cli.db'} (DATABASE_URL)" in said
    assert "`ledgersync db upgrade`" in said
    (tmp_path / "cli.db").touch()  # there, but empty
    assert "the database is not set up; run `ledgersync db upgrade`" in run(
        "clients", "list", ok=False)


def test_help_everywhere(run):
    for args in (["--help"], ["invite", "--help"], ["clients", "import", "--help"]):
        assert "Usage:" in run(*args)


def test_module_entry_point_exists():
    assert (Path(__file__).parents[1] / "cli" / "__main__.py").exists()


@pytest.fixture
def firm_ready(run):
    run("db", "upgrade")
    run("firm", "create", "Smith & Co", "--admin-email", "a@s.example",
        "--admin-password-stdin", stdin="correct horse 1\n")
    return run


def test_a_client_without_a_way_to_reach_them_is_fixed_with_clients_update(firm_ready):
    """Added with neither phone nor email: a warning names the command; inviting says
    what is missing and the command that adds it; `clients update` adds it; adding the
    same client again points at `clients update` too."""
    run = firm_ready
    added = run("clients", "add", "Maria Gonzalez")
    assert "Added Maria Gonzalez" in added
    assert ("can't be invited until a phone or email is set: ledgersync clients update "
            "'Maria Gonzalez' --phone NUMBER") in added
    refused = run("invite", "maria", "--email", ok=False)
    assert "Error: Maria Gonzalez has no email address" in refused
    assert "fix: ledgersync clients update 'Maria Gonzalez' --email ADDRESS" in refused
    again = run("clients", "add", "Maria Gonzalez", "--email", "maria@example.com", ok=False)
    assert "already a client" in again
    assert "fix: ledgersync clients update 'Maria Gonzalez'" in again
    assert "Updated Maria Gonzalez" in run("clients", "update", "maria",
                                           "--email", "maria@example.com")
    invited = run("invite", "maria", "--email")
    assert invited.startswith("Invited Maria Gonzalez by email")
    assert re.search(r"The link works until \w{3} \d+ \w{3}, \d+:\d\d [AP]M [A-Z]{3,4}\.",
                     invited), invited  # date, time and zone, as the text says it
    assert re.search(r"Maria Gonzalez +email works until \w{3} \d+ \w{3}, \d+:\d\d [AP]M",
                     run("pending"))
    by_sms = run("invite", "maria", "--sms", ok=False)
    assert "fix: ledgersync clients update 'Maria Gonzalez' --phone NUMBER" in by_sms
    assert "fix: ledgersync resend 'Maria Gonzalez' --email" in by_sms


def test_clients_update_changes_what_it_is_given_and_refuses_nonsense(firm_ready):
    run = firm_ready
    run("clients", "add", "Acme Co", "--phone", "(415) 555-2671")
    out = run("clients", "update", "acme", "--name", "Acme Corp", "--phone", "2125550134",
              "--timezone", "America/Chicago", "--bank", "Chase", "--bank", "Ally")
    assert "Updated Acme Corp" in out and "(212) 555-0134" in out
    listed = run("clients", "list")
    assert "Acme Corp" in listed and "Acme Co " not in listed
    assert "is not a time zone" in run("clients", "update", "acme", "--timezone", "Mars/Base",
                                       ok=False)
    assert "Say what to change" in run("clients", "update", "acme", ok=False)
    assert "Updated Acme Corp" in run("clients", "update", "acme corp", "--phone", "")
    assert "(212) 555-0134" not in run("clients", "list")


def test_outbox_is_oldest_first_with_utc_beside_each_zone(firm_ready):
    """A text to Los Angeles, then one to New York: the order is the order they were
    written (said at the top), each time in its recipient's zone and in UTC, so an
    EST line under a PST one reads right."""
    run = firm_ready
    run("clients", "add", "Lou West", "--phone", "(415) 555-2671")
    run("clients", "add", "Ned East", "--phone", "(212) 555-0134")
    run("invite", "lou", "--sms")
    run("invite", "ned", "--sms")
    out = run("outbox")
    assert out.startswith("The last 2 messages, oldest first; each time in its recipient's zone")
    heads = [line for line in out.splitlines() if line.startswith("#")]
    assert "to +14155552671" in heads[0] and "to +12125550134" in heads[1]
    assert (" PST (" in heads[0] or " PDT (" in heads[0]) and " UTC)" in heads[0]
    utc = [line.split("(")[1][:5] for line in heads]
    assert utc == sorted(utc)


def test_a_command_run_elsewhere_makes_no_database_and_says_where_it_looked(tmp_path):
    """`ledgersync status maria` in a directory without LedgerSync: no empty database and
    no secret key left behind, and the way to the real one; `db upgrade` makes one."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SECRET_KEY"}}

    def ledgersync(*args):
        return subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)

    for args in (["status", "maria"], ["worker", "--burst"], ["outbox"]):
        done = ledgersync(*args)
        assert done.returncode != 0 and "Traceback" not in done.stderr
        assert f"No database at {tmp_path / 'instance' / 'ledgersync.db'}" in done.stderr
        assert "DATABASE_URL" in done.stderr and "ledgersync db upgrade" in done.stderr
        assert not (tmp_path / "instance").exists()
    assert "Usage:" in ledgersync("status", "--help").stdout
    assert ledgersync("db", "upgrade").returncode == 0
    assert (tmp_path / "instance" / "ledgersync.db").exists()


def test_every_commands_short_help_is_a_whole_sentence():
    """`ledgersync --help` lists each command by the first sentence of its help: one
    that stands alone, not one cut off with '...'."""
    import click

    from cli.main import main

    def cut(group, prefix=""):
        for name, command in group.commands.items():
            if command.get_short_help_str(limit=55).endswith("..."):
                yield f"{prefix}{name}"
            if isinstance(command, click.Group):
                yield from cut(command, f"{prefix}{name} ")

    assert list(cut(main)) == []
