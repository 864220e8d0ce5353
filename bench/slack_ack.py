"""Slack under load: the acknowledgement and the time to answer, beside a bare Bolt app.

Starts the Slack Web API stand-in, real workers (`ledgersync worker`, the Procfile's
worker process) and gunicorn twice as the Procfile runs it (2 workers x 8 threads):
our app, and a bare Bolt app whose `/ledgersync` acknowledges and answers a fixed
line in its listener. Then 50 people (threads) each send a signed slash command,
wait for Slack's acknowledgement, wait for the answer to reach the Slack stand-in,
and send the next one, for 30 s per command and app: `invite <client> sms` (a
different client each time) and `status <client>`. Prints, per row, the requests,
the acknowledgement's p50/p99/max, the time to answer (request sent -> answer
received by the stand-in) p50/p99/max, answers missing and answers that say
something went wrong; then our/bare ratios.

    python -m bench.slack_ack [--seconds 30] [--users 50] [--workers 2] [--postgres]
                              [--oauth]

--oauth runs ours as production does for many firms: installed by OAuth (the
workspace's token found, unsealed, per request) instead of one SLACK_BOT_TOKEN.

The embedded SQLite default unless --postgres; Redis and PostgreSQL of its own
(bench/servers.py).
BENCH_WORKER_ARGS=--fork runs the workers forking a process per job.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slack_sdk.signature import SignatureVerifier  # noqa: E402

from bench import servers  # noqa: E402
from bench.servers import postgres_url  # noqa: E402
from tests.slack_standin import TEAM, SlackStandIn  # noqa: E402

SECRET = "bench-signing-secret"
CLIENTS = 12_000
ANSWER_CAP = 30.0  # seconds an answer may take before it counts as missing
WORKER_ARGS = os.environ.get("BENCH_WORKER_ARGS", "").split()  # e.g. --fork


OAUTH = {"SLACK_CLIENT_ID": "1111.2222", "SLACK_CLIENT_SECRET": "bench-client-secret"}


def prepare(database_url: str, oauth: bool = False) -> None:
    import wiring
    from core.firms import access, firms, workspaces
    from core.platform import config
    from core.platform.names import name_key
    from core.records import Client, migrations

    wiring.start(config.Settings(database_url=database_url, secret_key="bench-secret"))
    migrations.upgrade()
    if oauth:
        workspaces.save(workspaces.Workspace(client_id=OAUTH["SLACK_CLIENT_ID"], team_id=TEAM,
                                             bot_user_id="UBOT", bot_token="xoxb-bench"))
    firm = firms.create("Bench & Co", admin_email="ann@bench.example",
                        admin_password="correct horse 1")
    access.connect(TEAM, "UANN", "ann@bench.example", "correct horse 1")
    rows = [{"firm": firm.id, "name": f"Client {i:05}", "name_key": name_key(f"Client {i:05}"),
             "phone": f"+1415{5550000 + i:07}", "banks": "[]"} for i in range(CLIENTS)]
    for start in range(0, len(rows), 500):
        Client.insert_many(rows[start:start + 500]).execute()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(app: str, env: dict) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--threads", "8", "--log-level", "warning", app], cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process, port
        except OSError as problem:
            if getattr(problem, "code", None):  # an HTTP answer: it is up
                return process, port
            time.sleep(0.2)
    raise RuntimeError(f"{app} did not start")


def start_workers(count: int, env: dict) -> list[subprocess.Popen]:
    from redis import Redis
    from rq import Worker

    workers = [subprocess.Popen([sys.executable, "-m", "cli", "worker", *WORKER_ARGS], cwd=ROOT,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(count)]
    redis = Redis.from_url(env["REDIS_URL"])
    deadline = time.monotonic() + 60
    while Worker.count(connection=redis) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return workers


class Load:
    """People sending one command after another, each waiting for its answer."""

    def __init__(self, port: int, slack: SlackStandIn, texts, seconds: float):
        self.port, self.slack, self.seconds = port, slack, seconds
        self.texts, self.lock = texts, threading.Lock()
        self.acks: list[float] = []
        self.answers: list[float] = []
        self.missing = 0

    def run(self, users: int) -> Load:
        deadline = time.perf_counter() + self.seconds
        with ThreadPoolExecutor(users) as pool:
            list(pool.map(lambda _: self.person(deadline), range(users)))
        return self

    def person(self, deadline: float) -> None:
        while time.perf_counter() < deadline:
            with self.lock:
                text = next(self.texts)
            key = uuid.uuid4().hex
            sent = time.perf_counter()
            ack = post(self.port, text, self.slack.response_url(key))
            arrived = self.slack.wait_arrival(key, ANSWER_CAP)
            with self.lock:
                self.acks.append(ack)
                if arrived is None:
                    self.missing += 1
                else:
                    self.answers.append((arrived - sent) * 1000)


def post(port: int, text: str, response_url: str, into: list | None = None) -> float:
    """Send a signed command; the acknowledgement's time (ms). `into`: gets what the
    acknowledgement said."""
    body = urlencode({"team_id": TEAM, "user_id": "UANN", "command": "/ledgersync",
                      "text": text, "channel_id": "C1", "response_url": response_url,
                      "trigger_id": "t"}).encode()
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body.decode())
    request = urllib.request.Request(f"http://127.0.0.1:{port}/slack/events", data=body,
                                     headers={"X-Slack-Request-Timestamp": ts,
                                              "X-Slack-Signature": signature})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as reply:
        said = reply.read()
        assert reply.status == 200
    if into is not None:
        into.append(said.decode(errors="replace"))
    return (time.perf_counter() - start) * 1000


def pct(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


WRONG = ("Something went wrong", "No client matches", "database is locked", "busy")


def went_wrong(slack: SlackStandIn) -> int:
    """Answers that are not the answer: a failure, a refusal, a client not found."""
    return sum(any(w in json.dumps(p) for w in WRONG) for n, p in slack.calls
               if n.startswith("respond:"))


def row(name: str, label: str, load: Load, wrong: int) -> None:
    a, t = load.acks, load.answers
    print(f"{name:<7} {label:<6} {len(a):>6} {pct(a, 50):>7.0f} {pct(a, 99):>7.0f} "
          f"{max(a):>7.0f} {pct(t, 50):>8.0f} {pct(t, 99):>8.0f} {max(t or [0]):>8.0f} "
          f"{load.missing:>7} {wrong:>6}")


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--oauth", action="store_true")
    args = parser.parse_args()
    redis_url = servers.redis_url()

    with tempfile.TemporaryDirectory() as folder, SlackStandIn() as slack:
        database_url = postgres_url() if args.postgres else f"sqlite:///{folder}/bench.db"
        prepare(database_url, args.oauth)
        env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "bench-secret",
               "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": "xoxb-bench",
               "SLACK_API_URL": slack.api_url, "REDIS_URL": redis_url,
               "PUBLIC_BASE_URL": "https://connect.example.com", "QUIET_HOURS": "off"}
        ours_env = {**env, **OAUTH} if args.oauth else env
        processes = start_workers(args.workers, ours_env)
        (ours, ours_port), (bare, bare_port) = serve("web:create_app()", ours_env), \
            serve("bench.bare_bolt:app", env)
        processes += [ours, bare]
        try:
            report(args, slack, ours_port, bare_port, database_url)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait()


def report(args, slack: SlackStandIn, ours_port: int, bare_port: int, database_url: str):
    # Each row its own clients from the first (the bare app touches none): ours never
    # reaches CLIENTS invites in a row, so it never repeats a client.
    commands = {"invite": lambda: (f'invite "Client {i % CLIENTS:05}" sms'
                                   for i in itertools.count()),
                "status": lambda: (f'status "Client {i % CLIENTS:05}"' for i in
                                   itertools.count())}
    print(f"{args.users} people at once for {args.seconds:.0f} s per row, each waiting for "
          f"its answer; gunicorn 2 x 8; {args.workers} workers; "
          f"{'PostgreSQL' if args.postgres else 'SQLite'}"
          f"{'; installed by OAuth' if args.oauth else ''}")
    print(f"{'command':<7} {'app':<6} {'reqs':>6} {'ack50':>7} {'ack99':>7} {'ackmax':>7} "
          f"{'ans50':>8} {'ans99':>8} {'ansmax':>8} {'missing':>7} {'wrong':>6}   (ms)")
    for name, texts in commands.items():
        loads = {}
        for label, port in (("bare", bare_port), ("ours", ours_port)):
            before = went_wrong(slack)
            loads[label] = Load(port, slack, texts(), args.seconds).run(args.users)
            row(name, label, loads[label], went_wrong(slack) - before)
        ours, bare = loads["ours"], loads["bare"]
        print(f"{name:<7} {'ratio':<6} {'':>6} {pct(ours.acks, 50) / pct(bare.acks, 50):>7.2f} "
              f"{pct(ours.acks, 99) / pct(bare.acks, 99):>7.2f} "
              f"{max(ours.acks) / max(bare.acks):>7.2f}")


if __name__ == "__main__":
    main()
