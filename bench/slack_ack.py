"""Slack acknowledgement latency under load, beside a bare Bolt app.

Starts the Slack Web API stand-in, then gunicorn twice on this machine — our app
(`web:create_app()`, as the Procfile runs it) and a bare Bolt app whose
`/ledgersync` only acknowledges — and sends each the same signed slash commands,
50 at a time: `invite <client> sms` (400 different clients) and `status <client>`.
Prints p50/p99 of the time to Slack's acknowledgement, and the ratio.

    python bench/slack_ack.py [--requests 400] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slack_sdk.signature import SignatureVerifier  # noqa: E402

from tests.slack_standin import TEAM, SlackStandIn  # noqa: E402

SECRET = "bench-signing-secret"


def prepare(database_url: str, clients: int) -> None:
    from core import access, config, firms, migrations, runtime
    from core import clients as core_clients

    runtime.start(config.Settings(database_url=database_url, secret_key="bench-secret"))
    migrations.upgrade()
    firm = firms.create("Bench & Co", admin_email="ann@bench.example",
                        admin_password="correct horse 1")
    access.connect(TEAM, "UANN", "ann@bench.example", "correct horse 1")
    for i in range(clients):
        core_clients.add(firm, f"Client {i:04}", phone=f"+1415555{i:04}")


def serve(app: str, port: int, env: dict) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--threads", "8", "--log-level", "warning", app],
        cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except OSError as problem:
            if getattr(problem, "code", None):  # an HTTP answer: it is up
                return process
            time.sleep(0.2)
    raise RuntimeError(f"{app} did not start")


def post(port: int, text: str, response_url: str) -> float:
    body = urlencode({"team_id": TEAM, "user_id": "UANN", "command": "/ledgersync",
                      "text": text, "channel_id": "C1", "response_url": response_url,
                      "trigger_id": "t"}).encode()
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body.decode())
    request = urllib.request.Request(f"http://127.0.0.1:{port}/slack/events", data=body,
                                     headers={"X-Slack-Request-Timestamp": ts,
                                              "X-Slack-Signature": signature})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as reply:
        reply.read()
        assert reply.status == 200
    return (time.perf_counter() - start) * 1000


def measure(port: int, texts: list[str], concurrency: int, response_url: str) -> list[float]:
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda t: post(port, t, response_url), texts))


def pct(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1]


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, SlackStandIn() as slack:
        database_url = f"sqlite:///{folder}/bench.db"
        prepare(database_url, args.requests)
        env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "bench-secret",
               "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": "xoxb-bench",
               "SLACK_API_URL": slack.api_url, "REDIS_URL": "redis://127.0.0.1:6379/14",
               "PUBLIC_BASE_URL": "https://connect.example.com"}
        ours, bare = serve("web:create_app()", 8731, env), serve("bench.bare_bolt:app", 8732, env)
        try:
            runs = {
                "invite": [f"invite \"Client {i:04}\" sms" for i in range(args.requests)],
                "status": [f"status \"Client {i:04}\"" for i in range(args.requests)],
            }
            print(f"{args.requests} signed requests per row, {args.concurrency} at a time, "
                  "gunicorn 2 workers x 8 threads")
            print(f"{'command':<8} {'app':<10} {'p50 ms':>8} {'p99 ms':>8}")
            for name, texts in runs.items():
                results = {}
                for label, port in (("bare Bolt", 8732), ("ours", 8731)):
                    samples = measure(port, texts, args.concurrency, slack.response_url())
                    results[label] = samples
                    p50, p99 = pct(samples, 50), pct(samples, 99)
                    print(f"{name:<8} {label:<10} {p50:>8.1f} {p99:>8.1f}")
                ratio50 = pct(results["ours"], 50) / pct(results["bare Bolt"], 50)
                ratio99 = pct(results["ours"], 99) / pct(results["bare Bolt"], 99)
                print(f"{name:<8} {'ratio':<10} {ratio50:>8.2f} {ratio99:>8.2f}")
        finally:
            for process in (ours, bare):
                process.terminate()
                process.wait()


if __name__ == "__main__":
    main()
