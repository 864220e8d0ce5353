"""`ledgersync invite-all` and `ledgersync bulk ...`, run as a user runs them (a real
process, no Redis: sends happen inline into the local outbox)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CSV = """name,email,phone,banks
Acme Co,books@acme.example,(415) 555-2671,Chase
Maria Gonzalez,,(212) 555-0134,
John Smith,,(212) 555-0143,
Jane Smith,jane@example.com,(646) 555-0188,
Mail Only,mail@example.com,,
Cy Nothing,,,
"""


@pytest.fixture
def run(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "SECRET_KEY": "cli-test-secret", "PUBLIC_BASE_URL": "https://connect.example.com",
           "REDIS_URL": "redis://127.0.0.1:1/0", "QUIET_HOURS": "off"}
    env.pop("LEDGERSYNC_FIRM", None)

    def ledgersync(*args, ok=True, stdin=""):
        done = subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=tmp_path,
                              input=stdin, capture_output=True, text=True, timeout=60)
        assert "Traceback" not in done.stderr, done.stderr
        if ok:
            assert done.returncode == 0, done.stdout + done.stderr
        else:
            assert done.returncode != 0, done.stdout
        return done.stdout + done.stderr

    return ledgersync


@pytest.fixture
def firm(run, tmp_path):
    run("db", "upgrade")
    run("firm", "create", "Smith & Co", "--admin-email", "ann@smith.example",
        "--admin-password-stdin", stdin="correct horse 1\n")
    (tmp_path / "clients.csv").write_text(CSV)
    assert "6 added" in run("clients", "import", "clients.csv")


def texts_in(outbox: str) -> int:
    return outbox.count("SMS to ")


def test_invite_all_confirms_sends_and_summarizes(run, firm):
    out = run("invite-all", "--yes")
    assert ("About to invite 5 clients: 4 by SMS, 1 by email. Takes about 4 s at the "
            "sender's rate (SMS_RATE 1/s, EMAIL_RATE 10/s).") in out
    assert "Skipped 1:\n  no mobile number or email address (1): Cy Nothing" in out
    assert "Send?" not in out
    assert "Run #1: all 5 invites sent, 1 skipped." in out
    assert "failed" not in out.split("Run #1")[1]
    assert "ledgersync bulk status 1" in out
    outbox = run("outbox", "--limit", "20")
    assert texts_in(outbox) == 4
    assert "EMAIL to mail@example.com" in outbox
    assert "Hi Acme, Smith & Co invites you" in outbox

    status = run("bulk", "status")
    assert "Run #1 · every client not yet invited · done" in status
    assert "Sent 5 of 6 · 0 failed · 1 skipped" in status
    assert "no mobile number or email address (1): Cy Nothing" in status

    again = run("invite-all", "--yes")
    assert "Nobody to invite (every client not yet invited); nothing was sent." in again
    assert "no mobile number or email address (1): Cy Nothing" in again
    assert "Send?" not in again
    assert texts_in(run("outbox", "--limit", "20")) == 4

    listed = run("invite-all", "--list", "-", "--yes", stdin="Acme\n")
    assert "Nobody to invite" in listed
    assert "a valid invite is still pending (1): Acme" in listed

    runs = run("bulk", "list")
    assert runs.splitlines()[-1].startswith("#1 ")
    assert "done" in runs.splitlines()[-1] and "Sent 5 of 6" in runs.splitlines()[-1]


def test_answering_no_sends_nothing_and_cancels_the_run(run, firm):
    out = run("invite-all", "--sms", stdin="n\n")
    assert "About to invite 4 clients: 4 by SMS, 0 by email." in out
    assert "no mobile number or email address (1): Cy Nothing" in out
    assert "no mobile number (1): Mail Only" in out
    assert "Send? [y/N]" in out
    assert "Canceled run #1: nothing was sent." in out
    assert "The outbox is empty." in run("outbox")
    status = run("bulk", "status", "1")
    assert "Run #1 · every client not yet invited · canceled" in status
    assert "Sent 0 of 6" in status and "4 canceled" in status
    assert "already canceled; nothing to cancel" in run("bulk", "cancel", "1")


def test_a_list_on_stdin_skips_unknown_names(run, firm):
    out = run("invite-all", "--list", "-", "--yes", stdin="Acme\nNobody\n")
    assert "About to invite 1 client: 1 by SMS, 0 by email." in out
    assert "unknown name (1): Nobody" in out
    assert "Run #1: the invite was sent, 1 skipped." in out
    outbox = run("outbox")
    assert texts_in(outbox) == 1 and "Hi Acme" in outbox


def test_a_list_on_stdin_without_yes_only_previews(run, firm):
    out = run("invite-all", "--list", "-", stdin="Acme\n")
    assert "About to invite 1 client: 1 by SMS, 0 by email." in out
    assert "pass --yes to send" in out
    assert "Canceled run #1: nothing was sent." in out
    assert "The outbox is empty." in run("outbox")


def test_a_csv_list_uses_the_first_column(run, firm, tmp_path):
    (tmp_path / "these.csv").write_text('name,note\n"Jane Smith",vip\nMail Only,\n')
    out = run("invite-all", "--list", "these.csv", "--email", "--yes")
    assert "About to invite 2 clients: 0 by SMS, 2 by email." in out
    assert "Skipped" not in out


def test_bulk_errors_are_one_clear_line(run, firm):
    assert "No bulk runs yet" in run("bulk", "status")
    assert "Error: No such bulk run" in run("bulk", "status", "999", ok=False)
    assert "Error: No such bulk run" in run("bulk", "cancel", "999", ok=False)
    assert "Error: No such bulk run" in run("bulk", "retry", "999", ok=False)
    assert "Choose one of" in run("invite-all", "--expired", "--list", "-", ok=False)


def test_runs_of_another_firm_are_not_visible(run, firm):
    run("invite-all", "--list", "-", "--yes", stdin="Acme\n")
    run("firm", "create", "Other LLP", "--admin-email", "o@o.example",
        "--admin-password-stdin", stdin="correct horse 2\n")
    assert "Error: No such bulk run" in run("--firm", "Other LLP", "bulk", "status", "1",
                                            ok=False)
    assert "No bulk runs yet" in run("--firm", "Other LLP", "bulk", "list")
    assert "#1 " in run("--firm", "Smith & Co", "bulk", "list")


def test_durations_read_like_a_person_wrote_them():
    from cli.render import duration

    assert duration(0) == "under a second"
    assert duration(4) == "about 4 s"
    assert duration(38) == "about 40 s"
    assert duration(400) == "about 7 min"
    assert duration(2 * 3600 + 5 * 60) == "about 2 h 5 min"


def test_the_summary_names_failures_and_quiet_hours():
    from collections import Counter
    from types import SimpleNamespace as Obj

    from cli.render import bulk_outcome

    progress = Obj(run=Obj(id=7, status="running"), total=10,
                   counts=Counter(sent=5, failed=2, skipped=1, waiting=2))
    failed = [Obj(label="Ann Lee", reason="the address was refused (550 no such user)"),
              Obj(label="Bo Chen", reason="the address was refused (550 no such user)")]
    lines = bulk_outcome(progress, failed, 2)
    assert lines[0] == "Run #7 so far: 5 of 9 invites sent, 2 failed, 1 skipped."
    assert "  the address was refused (550 no such user) (2): Ann Lee, Bo Chen" in lines
    assert "2 texts wait for quiet hours and go out in the client's morning." in lines
    assert "To try the failed ones again: ledgersync bulk retry 7" in lines
