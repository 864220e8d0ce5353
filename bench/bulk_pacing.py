"""How close does a bulk run get to SMS_RATE, and does it ever exceed it?

Loads N clients with a mobile number into PostgreSQL, starts the Twilio stand-in
(real SDK, real HTTP) and W real RQ workers (`ledgersync worker`), then sends one
bulk run (`not_invited`, by SMS) at SMS_RATE and reports, from the stand-in's clock:
total time, texts/s achieved against the rate, the busiest 1-second window, the gaps
between consecutive texts, and duplicates.

    python -m bench.bulk_pacing [--clients 10000] [--rate 200] [--workers 2]
    BENCH_POSTGRES_URL=postgresql://…/ledgersync_bench BENCH_REDIS_URL=redis://…/12 …

The bench database is dropped and created again; the Redis database is flushed.
Sending stops after --budget seconds (the run is canceled) when the workers can't
keep up with the rate; the numbers then cover what was sent until then.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis import Redis  # noqa: E402

from bench.sweep_due import fresh_pg  # noqa: E402
from core import bulk, config, db, firms, migrations, outbound  # noqa: E402
from core.clients import name_key  # noqa: E402
from core.models import BulkRun, Client  # noqa: E402
from jobs import queues  # noqa: E402
from jobs.pacing import SAFETY  # noqa: E402
from tests.helpers import kill_tree, start_worker, worker_env  # noqa: E402
from tests.twilio_standin import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, TwilioStandIn  # noqa: E402

PG_URL = os.environ.get("BENCH_POSTGRES_URL",
                        "postgresql://postgres@127.0.0.1:5432/ledgersync_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")


def setup(args, twilio: TwilioStandIn) -> config.Settings:
    fresh_pg(PG_URL)
    settings = config.Settings(
        database_url=PG_URL, redis_url=REDIS_URL, secret_key="bench-secret-key-0123456789",
        public_base_url="https://connect.example.com", quiet_hours=None,
        sms_rate=float(args.rate), twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN, twilio_from_number=FROM_NUMBER, twilio_api_url=twilio.url)
    config.use(settings)
    outbound.reset_senders()
    db.bind(PG_URL)
    migrations.upgrade()
    Redis.from_url(REDIS_URL).flushdb()
    return settings


def load_clients(firm, count: int) -> list[str]:
    numbers = [f"+1212{5550000 + i:07}" if i < 10_000 else f"+1917{2000000 + i:07}"
               for i in range(count)]
    rows = [{"firm": firm, "name": f"Client {i:05}", "name_key": name_key(f"Client {i:05}"),
             "phone": number, "banks": []} for i, number in enumerate(numbers)]
    with db.database.atomic():
        for start in range(0, count, 1000):
            Client.insert_many(rows[start:start + 1000]).execute()
    return numbers


def wait_until_sent(run_id: int, twilio: TwilioStandIn, count: int, budget: float) -> None:
    """Until every text is out, or `budget` seconds: then the run is canceled (what is
    measured is the pace, which the first minute shows as well as the whole run)."""
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        if len(twilio.sent()) >= count and BulkRun.get_by_id(run_id).status == "done":
            return
        time.sleep(0.2)
    left = bulk.cancel(run_id, actor="bench")
    time.sleep(1.0)  # the texts already claimed
    print(f"  budget of {budget:.0f} s used up: canceled the {left:,} texts not sent yet")


def report(args, twilio: TwilioStandIn, numbers: list[str], started: float) -> None:
    texts = sorted(twilio.sent(), key=lambda a: a.monotonic)
    marks = [a.monotonic for a in texts]
    gaps = sorted((b - a) * 1000 for a, b in zip(marks, marks[1:], strict=False))
    per_number = collections.Counter(a.to for a in texts)
    duplicates = sum(n - 1 for n in per_number.values())
    total = marks[-1] - started
    span = marks[-1] - marks[0]
    overall, steady = len(texts) / total, (len(texts) - 1) / span
    interval = 1000 * SAFETY / args.rate
    print(f"  texts: {len(texts):,} accepted for {len(numbers):,} clients, "
          f"{len(set(numbers) - set(per_number)):,} not sent, {duplicates} duplicates")
    print(f"  total time: {total:.1f} s from start to last text (first text after "
          f"{marks[0] - started:.2f} s)")
    print(f"  achieved: {overall:.1f} texts/s overall = {100 * overall / args.rate:.1f}% of "
          f"SMS_RATE={args.rate:g}; {steady:.1f} texts/s first to last text = "
          f"{100 * steady / args.rate:.1f}%")
    print(f"  busiest 1-second window: {twilio.busiest(1.0)} texts (limit {args.rate:g})")
    print(f"  gap between consecutive texts: p50 {statistics.median(gaps):.2f} ms, "
          f"p99 {gaps[int(0.99 * (len(gaps) - 1))]:.2f} ms, min {gaps[0]:.2f} ms, "
          f"max {gaps[-1]:.2f} ms (slot = {interval:.2f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds of sending before the run is canceled (default 60)")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    begun = time.monotonic()
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN) as twilio, \
            tempfile.TemporaryDirectory() as folder:
        settings = setup(args, twilio)
        firm = firms.create("Bench LLP", admin_email="b@bench.example", admin_password="x" * 12)
        numbers = load_clients(firm, args.clients)
        at = time.monotonic()
        plan = bulk.prepare(firm, "not_invited", channel="sms")
        print(f"\nbulk pacing: {args.clients:,} clients, SMS_RATE={args.rate:g}, "
              f"{args.workers} workers (prepare: {plan.sms:,} texts planned in "
              f"{time.monotonic() - at:.1f} s, eta {plan.eta_seconds:.0f} s)")
        env = worker_env(settings, SMS_RATE=str(args.rate), TWILIO_ACCOUNT_SID=ACCOUNT_SID,
                         TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_FROM_NUMBER=FROM_NUMBER,
                         TWILIO_API_URL=twilio.url, SLACK_BOT_TOKEN="")
        workers = [start_worker(env, Path(folder), f"w{i}") for i in range(args.workers)]
        try:
            assert queues.install(settings), f"Redis not available at {REDIS_URL}"
            time.sleep(1.5)  # the workers are up: time the run, not their start-up
            started = time.monotonic()
            bulk.start(plan.run.id)
            wait_until_sent(plan.run.id, twilio, plan.sms, args.budget)
        finally:
            for worker in workers:
                kill_tree(worker)
            queues.uninstall()
        report(args, twilio, numbers, started)
    print(f"  (whole bench {time.monotonic() - begun:.0f} s)")


if __name__ == "__main__":
    main()
