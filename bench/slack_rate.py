"""Slack at a steady rate (open loop, as many people type) and past capacity, beside a
bare Bolt app.

Starts the Slack Web API stand-in, W real workers (`ledgersync worker`) and gunicorn
twice as the Procfile runs it (2 workers x 8 threads): our app, and a bare Bolt app
(`bench/bare_bolt.py`) that acknowledges and answers a fixed line in its listener.

- Open loop (`--rate R`): a signed slash command every 1/R seconds for S seconds,
  whatever the answers do (a sender never waits for an earlier one): `status <client>`,
  then `invite <client> sms` (a different client each time). Prints the acknowledgement
  p50/p99, the time to answer (request sent → answer at the stand-in) p50/p99/max, by
  quarter of the run, answers that came later than 10 s or never, and busy answers.
- Overload (`--overload N`): N senders, each sending its next `invite` as soon as the
  acknowledgement comes (far past what the workers can answer), for S seconds; then
  how long the last answers took to come once the load stopped.

    python -m bench.slack_rate [--rate 50] [--seconds 20] [--workers 2] [--postgres]
    python -m bench.slack_rate --overload 50 --seconds 20
    python -m bench.slack_rate --rate 5 --seconds 2 --workers 1   # a quick check
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import cpu, servers  # noqa: E402
from bench.servers import postgres_url  # noqa: E402
from bench.slack_ack import (  # noqa: E402
    CLIENTS,
    SECRET,
    post,
    prepare,
    serve,
    start_workers,
)
from tests.slack_standin import SlackStandIn  # noqa: E402

ANSWER_WITHIN = 10.0  # seconds: an answer later than this is late
CAP = 40.0  # seconds to wait for the last answers
BUSY = "LedgerSync is busy"


class Run:
    """Requests sent (key → when), their acknowledgements, what came back."""

    def __init__(self, slack: SlackStandIn):
        self.slack, self.lock = slack, threading.Lock()
        self.sent: dict[str, float] = {}
        self.acks: list[float] = []
        self.busy_acks = 0
        self.failed = 0

    def send(self, port: int, text: str) -> None:
        key = uuid.uuid4().hex
        with self.lock:
            self.sent[key] = time.perf_counter()
        try:
            ack, said = post_saying(port, text, self.slack.response_url(key))
        except OSError:
            with self.lock:
                self.failed += 1
            return
        with self.lock:
            self.acks.append(ack)
            self.busy_acks += BUSY in said

    def wait_for_answers(self) -> None:
        """Until every answer has come (or CAP has passed)."""
        deadline = time.perf_counter() + CAP
        while time.perf_counter() < deadline and not self._all_in():
            time.sleep(0.2)

    def answers(self) -> dict[str, float | None]:
        """Seconds from each request to its answer (None: none came within CAP, and the
        acknowledgement didn't carry one)."""
        self.wait_for_answers()
        arrived = self.slack.arrived
        return {key: (arrived[f"respond:{key}"] - at if f"respond:{key}" in arrived else None)
                for key, at in self.sent.items()}

    def _all_in(self) -> bool:
        return sum(f"respond:{k}" in self.slack.arrived for k in self.sent) + \
            self.busy_acks >= len(self.sent)


def post_saying(port: int, text: str, response_url: str) -> tuple[float, str]:
    """The acknowledgement's time (ms) and what it said (a busy answer comes in it)."""
    said = []
    started = time.perf_counter()
    post(port, text, response_url, into=said)
    return (time.perf_counter() - started) * 1000, said[0] if said else ""


def open_loop(port: int, slack: SlackStandIn, texts, rate: float, seconds: float) -> Run:
    run = Run(slack)
    with ThreadPoolExecutor(256) as pool:
        start = time.perf_counter()
        for n in itertools.count():
            at = start + n / rate
            if at - start >= seconds:
                break
            time.sleep(max(0.0, at - time.perf_counter()))
            pool.submit(run.send, port, next(texts))
    return run


def overload(port: int, slack: SlackStandIn, texts, senders: int, seconds: float) -> Run:
    run, lock = Run(slack), threading.Lock()
    deadline = time.perf_counter() + seconds

    def sender(_):
        while time.perf_counter() < deadline:
            with lock:
                text = next(texts)
            run.send(port, text)

    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(sender, range(senders)))
    run.stopped = time.perf_counter()
    return run


def pct(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def report(name: str, label: str, run: Run) -> None:
    answers = run.answers()
    times = [t for t in answers.values() if t is not None]
    late = sum(1 for t in times if t > ANSWER_WITHIN)
    missing = sum(1 for t in answers.values() if t is None) - run.busy_acks
    quarters = _quarters(run, answers)
    print(f"{name:<8} {label:<5} {len(run.sent):>6} {pct(run.acks, 50):>6.0f} "
          f"{pct(run.acks, 99):>6.0f} {1000 * pct(times, 50):>7.0f} {1000 * pct(times, 99):>7.0f} "
          f"{1000 * max(times or [0]):>7.0f} {late:>5} {max(missing, 0):>7} {run.busy_acks:>5} "
          f"{_busy_answers(run):>5}   p50 by quarter: {quarters}")


def _quarters(run: Run, answers: dict) -> str:
    ordered = sorted(run.sent.items(), key=lambda kv: kv[1])
    size = max(1, len(ordered) // 4)
    parts = []
    for i in range(4):
        chunk = [answers[k] for k, _ in ordered[i * size:(i + 1) * size] if answers[k] is not None]
        parts.append(f"{1000 * pct(chunk, 50):.0f}" if chunk else "-")
    return " / ".join(parts)


def _busy_answers(run: Run) -> int:
    keys = {f"respond:{k}" for k in run.sent}
    return sum(1 for name, payload in run.slack.calls
               if name in keys and BUSY in json.dumps(payload))


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--overload", type=int, metavar="SENDERS")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    redis_url = servers.redis_url()
    with tempfile.TemporaryDirectory() as folder, SlackStandIn() as slack:
        database_url = postgres_url() if args.postgres else f"sqlite:///{folder}/bench.db"
        prepare(database_url)
        env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "bench-secret",
               "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": "xoxb-bench",
               "SLACK_API_URL": slack.api_url, "REDIS_URL": redis_url,
               "PUBLIC_BASE_URL": "https://connect.example.com", "QUIET_HOURS": "off",
               "SMS_RATE": "1000"}
        workers = start_workers(args.workers, env)
        (ours, port), (bare, bare_port) = serve("web:create_app()", env), \
            serve("bench.bare_bolt:app", env)
        processes = [*workers, ours, bare]
        shared = {"workers": cpu.tree(*(w.pid for w in workers)),
                  "Redis": cpu.redis(redis_url),
                  **({"database": cpu.named("postgres")} if args.postgres else {})}
        meters = {"bare": {"web": cpu.tree(bare.pid), **shared},
                  "ours": {"web": cpu.tree(ours.pid), **shared}}
        try:
            measure(args, slack, {"bare": bare_port, "ours": port}, meters)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait()


def measure(args, slack: SlackStandIn, ports: dict, meters: dict) -> None:
    counter = itertools.count()
    texts = {"status": lambda: (f'status "Client {next(counter) % CLIENTS:05}"'
                                for _ in itertools.count()),
             "invite": lambda: (f'invite "Client {next(counter) % CLIENTS:05}" sms'
                                for _ in itertools.count())}
    how = (f"overload: {args.overload} senders, each sending again at its acknowledgement"
           if args.overload else f"open loop at {args.rate:g} commands/s")
    print(f"{how}, {args.seconds:.0f} s a row; gunicorn 2 x 8; {args.workers} workers; "
          f"{'PostgreSQL' if args.postgres else 'SQLite'}")
    print(f"{'command':<8} {'app':<5} {'sent':>6} {'ack50':>6} {'ack99':>6} {'ans50':>7} "
          f"{'ans99':>7} {'ansmax':>7} {'late':>5} {'missing':>7} {'busy':>5} {'busy*':>5}"
          "   (ms; busy: in the ack, busy*: a worker's)")
    for name in (["invite"] if args.overload else ["status", "invite"]):
        for label, target in ports.items():
            with cpu.Meter(meters[label]) as meter:
                if args.overload:
                    run = overload(target, slack, texts[name](), args.overload, args.seconds)
                else:
                    run = open_loop(target, slack, texts[name](), args.rate, args.seconds)
                run.wait_for_answers()
            report(name, label, run)
            print(f"{'':<8} {label:<5} {meter.line(len(run.sent))}")
            if args.overload:
                drained = _drained(run)
                print(f"{'':<8} {label:<5} the last answer came {drained:.1f} s after the load "
                      "stopped")


def _drained(run: Run) -> float:
    keys = [f"respond:{k}" for k in run.sent]
    last = max((run.slack.arrived[k] for k in keys if k in run.slack.arrived), default=run.stopped)
    return max(0.0, last - run.stopped)


if __name__ == "__main__":
    main()
