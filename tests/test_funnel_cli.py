"""`ledgersync funnel` and `ledgersync firm set digest`, run as a user runs them (a real
process, its own SQLite file)."""

from __future__ import annotations

import pytest

from tests.helpers import cli_runner


@pytest.fixture
def run(tmp_path):
    ledgersync = cli_runner(tmp_path)
    ledgersync("db", "upgrade")
    ledgersync("firm", "create", "Smith & Co", "--admin-email", "ann@smith.example",
               "--admin-password-stdin", stdin="correct horse 1\n")
    ledgersync("clients", "add", "Maria Gonzalez", "--phone", "2125550134")
    ledgersync("clients", "add", "Acme Co", "--email", "books@acme.example")
    ledgersync("invite", "maria", "--sms")
    ledgersync("invite", "acme", "--email")
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
