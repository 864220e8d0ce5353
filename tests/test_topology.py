"""Production's shape, on one machine: 2 web processes (gunicorn, as the Procfile starts
it), 3 workers and 1 clock (`ledgersync worker`, `ledgersync cron`), each in a process
group of its own with an environment of its own and its own working directory, as
separate hosts would be — against one PostgreSQL through PgBouncer (transaction
pooling) and one Redis over TLS. Slack and Twilio are the local stand-ins.

A bulk run, Slack commands (each answered by a worker), reminders and expiry all
complete exactly once, although one worker and one web process are SIGKILLed mid-run:
each client gets one invite text and one reminder, each invite expires once, every
acknowledged command is answered once. The test process plays the operator: it starts
the bulk run and, while it waits, sweeps as the clock does but with short grace periods
(the clock's are 10 minutes), which is what recovers the killed worker's work.

It prints what the workers did (texts a second, Slack answers a second, per worker);
docs/production.md quotes it. Nothing about speed is asserted.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

import wiring
from core.firms import access, firms
from core.invitations import bulk_plan, bulk_sending, clients, sweep
from core.platform import config
from core.records import Event, Invite, Message
from tests.conftest import bind_empty, make_settings
from tests.helpers import bulk_settled, wait_for
from tests.https_server import free_port, procfile_web
from tests.slack_requests import SECRET
from tests.slack_standin import TEAM
from tests.twilio_standin import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
N = 300  # clients in the bulk run
ASKED = ["Rita Reed", "Rosa Diaz", "Ruth Bell", "Ryan Ford", "Rex Hall", "Roy Kent"]
STATUS_ASKS = 24  # `/ledgersync status …` commands, half before the kills, half after
REMIND, EXPIRE = 25, 40  # seconds: REMINDER_AFTER, INVITE_TTL
GRACE = timedelta(seconds=3)  # the sweep's grace periods, shortened
PATIENCE = 240.0  # seconds: the cap on any one wait, reached only by a broken run


def phone(i: int) -> str:
    return f"+1212556{i:04}"


class Topology:
    """The processes, each a host of its own: its environment, directory, group."""

    def __init__(self, settings, twilio, slack, tmp_path):
        self.tmp_path, self.processes = tmp_path, {}
        self.settings = {
            "DATABASE_URL": settings.database_url, "DATABASE_POOLER": "transaction",
            "REDIS_URL": settings.redis_url, "SECRET_KEY": settings.secret_key,
            "PUBLIC_BASE_URL": settings.public_base_url, "QUIET_HOURS": "off",
            "INVITE_TTL": f"{EXPIRE}s", "REMINDER_AFTER": f"{REMIND}s", "SMS_RATE": "1000",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": FROM_NUMBER, "TWILIO_API_URL": twilio.url,
            "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_API_URL": slack.api_url, "WEB_CONCURRENCY": "1"}
        self.ports: dict[str, int] = {}

    def env(self, name: str, **more) -> dict[str, str]:
        """A fresh host's environment: the system's basics and the settings, nothing of
        the test run's (no TEST_*, no virtualenv of ours but the interpreter's path)."""
        basics = {k: os.environ[k] for k in ("PATH", "LANG", "TZ") if k in os.environ}
        basics["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{basics.get('PATH', '')}"
        return {**basics, "HOME": str(self.tmp_path / name), **self.settings, **more}

    def start(self, name: str, argv: list[str], **more) -> None:
        home = self.tmp_path / name
        home.mkdir()
        log = (self.tmp_path / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(
            argv, cwd=home, env=self.env(name, **more), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()

    def start_all(self) -> None:
        for name in ("web-a", "web-b"):
            self.ports[name] = free_port()
            self.start(name, ["bash", "-c", f"exec {procfile_web()}"],
                       PORT=str(self.ports[name]))
        for name in ("worker-1", "worker-2", "worker-3"):
            self.start(name, [sys.executable, "-m", "cli", "worker"])
        self.start("clock", [sys.executable, "-m", "cli", "cron"])
        for name in ("web-a", "web-b"):  # (the workers take jobs when they are up)
            assert wait_for(lambda n=name: self.serving(n), PATIENCE), self.log(name)

    def serving(self, name: str) -> bool:
        assert self.processes[name].poll() is None, self.log(name)
        try:
            with urllib.request.urlopen(f"{self.base(name)}/healthz", timeout=5) as answer:
                return answer.status == 200
        except OSError:
            return False

    def base(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text(errors="replace")[-4000:]

    def kill(self, name: str) -> None:
        """Machine death: the process group, whatever it was doing."""
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait()

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def command(base: str, slack, text: str, key: str) -> int:
    """`/ledgersync <text>` as Slack sends it, signed, over HTTP; the answer goes to the
    stand-in's response URL `key`. The acknowledgement's HTTP status."""
    body = urlencode({"token": "legacy", "team_id": TEAM, "user_id": "UANN",
                      "command": "/ledgersync", "text": text, "channel_id": "CWORK",
                      "response_url": slack.response_url(key), "trigger_id": "t"})
    stamp = str(int(time.time()))
    request = urllib.request.Request(f"{base}/slack/events", data=body.encode(), headers={
        "X-Slack-Request-Timestamp": stamp, "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=stamp,
                                                                          body=body)})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert b"busy" not in answer.read()
        return answer.status


@pytest.fixture
def topology(pgbouncer_url, tls_redis, twilio, slack, tmp_path):
    settings = make_settings(pgbouncer_url, redis_url=tls_redis.url, quiet_hours=None,
                             sms_rate=1000.0, twilio_account_sid=ACCOUNT_SID,
                             twilio_auth_token=AUTH_TOKEN, twilio_from_number=FROM_NUMBER,
                             twilio_api_url=twilio.url, slack_signing_secret=SECRET,
                             slack_bot_token="xoxb-test", slack_api_url=slack.api_url,
                             invite_ttl=timedelta(seconds=EXPIRE),
                             reminder_after=timedelta(seconds=REMIND))
    bind_empty(settings)
    built = Topology(settings, twilio, slack, tmp_path)
    yield built
    built.close()
    wiring.inline()


def make_firm():
    firm = firms.create("Topology & Co", admin_email="ann@topology.example",
                        admin_password="correct horse 1")
    assert access.connect(TEAM, "UANN", "ann@topology.example", "correct horse 1").ok
    for i in range(N):
        clients.add(firm, f"Client {i:03}", phone=phone(i))
    for i, name in enumerate(ASKED):
        clients.add(firm, name, phone=phone(N + i))
    return firm


def test_two_webs_three_workers_one_clock_lose_nothing_when_one_of_each_dies(
        topology, twilio, slack):
    firm = make_firm()
    topology.start_all()
    assert wiring.use_queue(config.settings())  # the operator's host, as a web process
    plan = bulk_plan.prepare(firm, "list", channel="sms",
                             names="\n".join(f"Client {i:03}" for i in range(N)))
    started = time.monotonic()
    assert bulk_sending.start(plan.run.id)

    asks = [(f"invite {name.lower()} sms", f"invite{i}")
            for i, name in enumerate(ASKED)]
    asks += [(f"status client {i:03}", f"status{i}") for i in range(STATUS_ASKS)]
    first, then = asks[: len(asks) // 2], asks[len(asks) // 2:]
    for i, (text, key) in enumerate(first):  # both web processes, in turn
        assert command(topology.base(("web-a", "web-b")[i % 2]), slack, text, key) == 200
    topology.kill("web-b")  # its acknowledged commands wait in Redis for a worker
    twilio.wait_for(N // 4, timeout=PATIENCE)
    at_kill, texts_at_kill = time.monotonic(), len(twilio.sent())
    topology.kill("worker-2")  # mid-run, with whatever job it held
    for text, key in then:  # the load balancer sends everything to the one left
        assert command(topology.base("web-a"), slack, text, key) == 200

    settle(plan.run.id, asks, slack)
    report(started, at_kill, texts_at_kill, twilio, slack, asks)
    check(plan.run.id, twilio, slack, asks)


def settle(run_id: int, asks, slack) -> None:
    """Until the run is settled, every command answered, every invite expired and no
    text left to send — sweeping every few seconds meanwhile, as the clock does."""
    last = [0.0]

    def done() -> bool:
        if time.monotonic() - last[0] > 3:
            sweep.run(pending_grace=GRACE, stuck_after=GRACE)
            last[0] = time.monotonic()
        return (bulk_settled(run_id) and all(slack.of(f"respond:{k}") for _, k in asks)
                and Invite.select().count() == N + len(ASKED)
                and not Invite.select().where(Invite.expired_at.is_null()).exists()
                and not Message.select().where(
                    Message.status.in_(["pending", "sending"])).exists())

    assert wait_for(done, PATIENCE + EXPIRE), (
        f"not settled: {Invite.select().where(Invite.expired_at.is_null()).count()} open, "
        f"{len([k for _, k in asks if not slack.of(f'respond:{k}')])} unanswered")


def report(started, at_kill, texts_at_kill, twilio, slack, asks) -> None:
    numbers, invite_texts = {phone(i) for i in range(N)}, {}
    for accepted in twilio.sent():  # a bulk client's first text is the invite
        if accepted.to in numbers:
            invite_texts.setdefault(accepted.to, accepted)
    invite_texts = list(invite_texts.values())
    span = max(a.monotonic for a in invite_texts) - min(a.monotonic for a in invite_texts)
    answered = sorted(slack.arrived[f"respond:{k}"] for _, k in asks)
    print(f"\ntopology: {len(invite_texts)} bulk texts in {span:.1f} s "
          f"({len(invite_texts) / span / 3:.1f} texts/s per worker with 3, then 2); "
          f"{texts_at_kill} texts before the kill, "
          f"{texts_at_kill / (at_kill - started) / 3:.1f} texts/s per worker with 3; "
          f"{len(answered)} Slack answers, the last "
          f"{answered[-1] - answered[0]:.1f} s after the first (beside the bulk run)")


def check(run_id: int, twilio, slack, asks) -> None:
    per_number = collections.Counter(a.to for a in twilio.sent())
    numbers = {phone(i) for i in range(N + len(ASKED))}
    # One invite text and one reminder each, and nothing else: no duplicate, no loss.
    assert set(per_number) == numbers
    assert [n for n, count in per_number.items() if count != 2] == []
    for kind in ("invite", "auto_reminder"):
        kinds = collections.Counter(m.invite_id for m in Message.select().where(
            Message.kind == kind, Message.status.in_(["queued", "sent", "delivered"])))
        assert len(kinds) == N + len(ASKED) and set(kinds.values()) == {1}, kind
    expired = collections.Counter(e.invite_id for e in Event.select().where(
        Event.kind == "invite.expired"))
    assert len(expired) == N + len(ASKED) and set(expired.values()) == {1}
    answers = {k: slack.of(f"respond:{k}") for _, k in asks}
    assert {k: len(v) for k, v in answers.items() if len(v) != 1} == {}
    for text, key in asks:
        said = json.dumps(answers[key])
        assert "Something went wrong" not in said, (text, said)
        if text.startswith("invite"):
            assert "Invited" in said, (text, said)
