"""A first run as the README tells it: `scripts/try`, then the second terminal.

The slow test runs the README's "Try it" sequence as written — `scripts/try` with
compressed times, then its second-terminal commands — and waits until the outbox
shows the reminder and the expiry, so the README can't drift from the product.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis, RedisError

from core.invitations import invites
from core.platform import config
from core.platform.errors import Refused
from core.records import Message
from tests import servers
from tests.helpers import redis_or_skip

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent
# Settings scripts/try manages: a second terminal has none of them in its environment.
MANAGED = {"PUBLIC_BASE_URL", "REDIS_URL", "DATABASE_URL", "INVITE_TTL", "REMINDER_AFTER",
           "QUIET_HOURS", "RESEND_COOLDOWN", "PORT", "SECRET_KEY", "LEDGERSYNC_TRY_DIR"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, cap: float, what, every: float = 1.0):
    """Poll until `condition()` is truthy; only a broken run reaches the cap."""
    deadline = time.monotonic() + cap
    while True:
        got = condition()
        if got:
            return got
        if time.monotonic() > deadline:
            what = what() if callable(what) else what
            pytest.fail(f"gave up after {cap:.0f}s waiting for {what}")
        time.sleep(every)


def second_terminal_env() -> dict[str, str]:
    """A fresh terminal after `. .venv/bin/activate`: none of scripts/try's settings."""
    env = {k: v for k, v in os.environ.items() if k not in MANAGED}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(BIN.parent)
    return env


def readme_block(after: str) -> str:
    """The first ```sh block after the sentence `after` in the README."""
    start = README.index(after)
    match = re.search(r"```sh\n(.*?)```", README[start:], re.S)
    assert match, f"no sh block after {after!r}"
    return match.group(1)


# --- the README's "Try it", run as written ----------------------------------------------


@pytest.mark.slow
def test_readme_try_it_sequence_shows_the_reminder_and_the_expiry(tmp_path):
    # The command the README gives for watching a reminder and an expiry in a minute.
    fast = readme_block("To watch a reminder and an").strip()
    assert fast == "REMINDER_AFTER=1m INVITE_TTL=3m QUIET_HOURS=off ./scripts/try", fast
    steps = [line.split("#")[0].strip()
             for line in readme_block("what to try next, in a second terminal").splitlines()]
    steps = [s for s in steps if s]
    assert steps[0] == ". .venv/bin/activate"
    steps = steps[1:]
    assert steps == ['ledgersync invite "Maria Gonzalez"', "ledgersync outbox",
                     "ledgersync status maria", "ledgersync resend maria --email"], steps

    # A spare Redis db on the run's Redis (tests/servers.py), emptied, so no other
    # test's jobs get in.
    redis_url = servers.redis_url().rsplit("/", 1)[0] + "/15"
    redis = redis_or_skip(redis_url)
    redis.flushdb()
    port = free_port()
    workdir = tmp_path / "try"  # .env and instance/ go here, not into the repository
    env = {**second_terminal_env(), "REMINDER_AFTER": "1m", "INVITE_TTL": "3m",
           "QUIET_HOURS": "off", "PORT": str(port), "REDIS_URL": redis_url,
           "LEDGERSYNC_TRY_DIR": str(workdir)}
    log = (tmp_path / "try.log").open("w+")
    started = time.monotonic()
    server = subprocess.Popen([str(ROOT / "scripts" / "try")], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def up():
            if server.poll() is not None:
                pytest.fail(f"scripts/try stopped ({server.returncode}):\n{output()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    return True
            except OSError:
                return False

        def output() -> str:
            log.flush()
            return (tmp_path / "try.log").read_text()

        wait_for(up, 180, "the service to answer /healthz")
        wait_for(lambda: "worker and the sweep are running" in output(), 30, "the jobs banner")
        banner = output()
        assert f"http://127.0.0.1:{port}" in banner
        for shown in ("REMINDER_AFTER", "1m", "INVITE_TTL", "3m", "QUIET_HOURS", redis_url):
            assert shown in banner, banner
        dotenv = (workdir / ".env").read_text()
        assert f'PUBLIC_BASE_URL="http://127.0.0.1:{port}"' in dotenv
        assert 'REMINDER_AFTER="1m"' in dotenv

        # The second terminal: the README's commands, with none of the settings exported.
        terminal = second_terminal_env()

        def ledgersync(command: str) -> str:
            args = command.split(" ", 1)[1]
            argv = ["ledgersync", *shlex.split(args)]
            done = subprocess.run(argv, cwd=workdir, env=terminal, capture_output=True,
                                  text=True, timeout=60)
            assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
            assert "Traceback" not in done.stderr
            return done.stdout

        said = [ledgersync(step) for step in steps]
        assert said[0].startswith("Invited Maria Gonzalez by SMS")
        assert f"http://127.0.0.1:{port}/i/" in said[1]  # the server's address, not :5000
        assert "Maria Gonzalez" in said[2]
        assert said[3].startswith("Sent a new link to Maria Gonzalez by email")

        # The client opens the newest link (the email's) while it works: her page, with
        # the one action; the SMS link it replaced says it was replaced.
        outbox = ledgersync("ledgersync outbox")
        links = re.findall(rf"http://127\.0\.0\.1:{port}/i/[\w.-]+", outbox)
        # (oldest first: the demo's messages, then Maria's text, then her email)
        assert opened(links[-1]) == (200, True), outbox  # "Accept and continue"
        assert opened(links[-2], "A newer link replaced this one") == (404, True), outbox

        last = {"outbox": ""}

        def reminded_and_expired():
            # `[auto_reminder, delivered]`, `[notice_expired, delivered]`
            shown = last["outbox"] = ledgersync("ledgersync outbox")
            kinds = re.findall(r"\[(\w+),", shown)
            return (any("reminder" in k for k in kinds) and any("expired" in k for k in kinds)
                    and shown)

        wait_for(reminded_and_expired, 420,
                 lambda: f"the reminder and the expiry notice; the outbox:\n{last['outbox']}", 3)
        elapsed = time.monotonic() - started
        print(f"README 'Try it' sequence: {elapsed:.0f}s")
    finally:
        stop(server)
        log.close()
        with contextlib.suppress(RedisError):
            redis.flushdb()


def opened(link: str, says: str = "Accept and continue") -> tuple[int, bool]:
    """The client taps the link: the status, and whether the page says `says`."""
    try:
        with urllib.request.urlopen(link, timeout=10) as page:
            return page.status, says in page.read().decode()
    except urllib.error.HTTPError as page:
        return page.code, says in page.read().decode()


def stop(process: subprocess.Popen) -> None:
    """Stop scripts/try's process group: the web app, its worker and its sweep."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):  # whatever outlived its leader
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


# --- resend: another channel at once, the same channel after the cooldown -------------------


def test_resend_by_another_channel_is_allowed_at_once(clock, maria):
    invites.send(maria, "sms")
    sent = invites.resend(maria, "email")
    assert sent.message.channel == "email" and sent.replaced is not None
    assert Message.select().count() == 2


def test_resend_on_the_same_channel_waits_for_the_cooldown(clock, maria):
    invites.send(maria, "sms")
    with pytest.raises(Refused, match="give it a minute before sending another by SMS"):
        invites.resend(maria, "sms")
    with pytest.raises(Refused, match="give it a minute"):
        invites.resend(maria)  # the channel of the last link: SMS
    clock.shift(timedelta(seconds=61))
    assert invites.resend(maria, "sms").message.channel == "sms"


def test_resend_cooldown_is_a_setting(clock, maria):
    before = config.settings()
    config.use(before.with_(resend_cooldown=timedelta(minutes=5)))
    try:
        invites.send(maria, "sms")
        clock.shift(timedelta(minutes=2))
        with pytest.raises(Refused, match="give it 5 minutes"):
            invites.resend(maria, "sms")
        clock.shift(timedelta(minutes=3))
        invites.resend(maria, "sms")
    finally:
        config.use(before)


def test_resend_cooldown_is_read_from_the_environment():
    assert config.Settings.from_env({"SECRET_KEY": "x"}).resend_cooldown == timedelta(seconds=60)
    assert config.Settings.from_env({"SECRET_KEY": "x", "RESEND_COOLDOWN": "2m"}) \
        .resend_cooldown == timedelta(minutes=2)
    with pytest.raises(config.ConfigError, match="not a duration"):
        config.Settings.from_env({"SECRET_KEY": "x", "RESEND_COOLDOWN": "soon"})
    assert "RESEND_COOLDOWN=60s" in (ROOT / ".env.example").read_text()
    assert "`RESEND_COOLDOWN`" in (ROOT / "docs" / "settings.md").read_text()


# --- `ledgersync outbox | head` ---------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path):
    env = {**second_terminal_env(), "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "SECRET_KEY": "cli-test-secret", "REDIS_URL": "redis://127.0.0.1:1/0"}
    for args in (["db", "upgrade"], ["demo"], ["invite", "Maria Gonzalez"],
                 ["resend", "maria", "--email"]):
        subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=tmp_path,
                       check=True, capture_output=True, timeout=60)
    return env


def test_outbox_into_a_closed_pipe_is_quiet(cli_env, tmp_path):
    # The reader has gone before a line is written: every write meets a closed pipe.
    process = subprocess.Popen([sys.executable, "-m", "cli", "outbox"], env=cli_env,
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) in (0, 141)
    assert stderr == ""


def test_outbox_piped_to_head_exits_without_an_error(cli_env, tmp_path):
    done = subprocess.run(["bash", "-c", "set -o pipefail; ledgersync outbox | head -1"],
                          env=cli_env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode in (0, 141), done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("The last ") and done.stdout.count("\n") == 1


# --- scripts/lib.sh: ensure_redis honours REDIS_URL ------------------------------------------


def test_ensure_redis_starts_redis_on_the_urls_port(tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/3"
    try:
        done = subprocess.run(
            ["bash", "-c", f'. "{ROOT}/scripts/lib.sh" && ensure_redis "$0"', url],
            cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert f"Starting Redis on 127.0.0.1:{port}" in done.stderr
        assert Redis.from_url(url, socket_connect_timeout=2).ping()
    finally:
        with contextlib.suppress(RedisError):
            Redis(port=port, socket_connect_timeout=2).shutdown(nosave=True)
    with pytest.raises(RedisError):
        Redis(port=port, socket_connect_timeout=1).ping()


def test_ensure_redis_starts_nothing_for_another_host(tmp_path):
    done = subprocess.run(
        ["bash", "-c", f'. "{ROOT}/scripts/lib.sh" && ensure_redis "$0"',
         "redis://redis.invalid:6390/0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "not this machine" in done.stderr and "Starting" not in done.stderr


def test_env_file_is_read_from_the_working_directory(tmp_path):
    (tmp_path / ".env").write_text('REMINDER_AFTER="30s"\nINVITE_TTL=60s\n')
    env = {k: v for k, v in second_terminal_env().items() if k not in MANAGED}
    code = ("from core.platform import config; s = config.settings(); "
            "print(s.invite_ttl.seconds)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**env,
                          "SECRET_KEY": "x"}, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "60", done.stderr

