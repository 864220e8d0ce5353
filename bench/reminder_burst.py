"""A minute in which many automatic reminders fall due: are they drained at the
sender's rate, and none twice?

Loads N clients, each with an open SMS invite whose day-3 reminder falls due within
one minute (spread evenly), as a bulk run three days ago leaves them, into PostgreSQL;
starts the Twilio stand-in (real SDK, real HTTP) and W real RQ workers; then asks for
the reminders as a bulk run does — a `catch_up` job at the latest of each 15-second
slice's times (`schedule.held`, `jobs.queues.catch_up_at`) — and runs the sweep every
minute as the clock does. Reports, from the stand-in's clock: reminders texted, duplicates,
the time from the first due to the last text, texts/s against SMS_RATE, the busiest
second.

    python -m bench.reminder_burst [--clients 100000] [--rate 200] [--workers 2]
    python -m bench.reminder_burst --clients 200 --rate 100 --workers 1   # a quick check

The bench database is dropped and created again; its Redis database is flushed.
"""

from __future__ import annotations

import argparse
import collections
import logging
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


import wiring  # noqa: E402
from bench import servers  # noqa: E402
from bench.bulk_pacing import (  # noqa: E402
    Scenario,
    cpu_seconds,
    start_workers,  # noqa: E402
)
from core.invitations import sweep  # noqa: E402
from core.platform import clock, config, db  # noqa: E402
from core.records import Firm, Message, migrations  # noqa: E402
from jobs import queues  # noqa: E402
from tests.helpers import kill_tree, wait_for, worker_env  # noqa: E402
from tests.twilio_standin import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, TwilioStandIn  # noqa: E402

LEAD = timedelta(seconds=10)  # the first reminder falls due this long after loading
WINDOW = timedelta(minutes=1)  # and the last one this long after the first (--window)
SWEEP_EVERY = 60.0  # seconds between sweeps, as `ledgersync cron` runs it
SLICE = 15  # seconds: a bulk run asks for a catch-up at the latest due of each slice


def setup(args, twilio: TwilioStandIn) -> config.Settings:
    settings = config.Settings(
        database_url=servers.postgres_url(), redis_url=servers.redis_url(),
        secret_key="bench-secret-key-0123456789",
        public_base_url="https://connect.example.com", quiet_hours=None,
        sms_rate=float(args.rate), twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN, twilio_from_number=FROM_NUMBER, twilio_api_url=twilio.url)
    wiring.start(settings)
    migrations.upgrade()
    return settings


def load(count: int, window: timedelta = WINDOW) -> tuple[float, float]:
    """`count` clients with an open SMS invite each, sent three days ago less a little,
    so that their reminders fall due from now + LEAD over `window`. The due window, as
    Unix times."""
    now = clock.now()
    first = now + LEAD
    step = window.total_seconds() / max(count - 1, 1)
    firm = Firm.create(name="Bench LLP", timezone="America/New_York").id
    sql = ("INSERT INTO client (firm_id, name, name_key, phone, banks, created_at, updated_at) "
           "SELECT %s, 'Client ' || n, 'client ' || n, '+1917' || (2000000 + n), '[]', "
           "%s, %s FROM generate_series(1, %s) AS n")
    db.database.execute_sql(sql, (firm, now, now, count))
    sql = ("INSERT INTO invite (firm_id, client_id, purpose, channel, token_digest, "
           "token_sealed, banks, sent_at, expires_at, reminder_due_at) "
           "SELECT %s, c.id, 'connect', 'sms', 'bench-' || c.id, %s, '[]', "
           "%s::timestamp + (c.id - 1) * %s * interval '1 second', "
           "%s::timestamp + (c.id - 1) * %s * interval '1 second', "
           "%s::timestamp + (c.id - 1) * %s * interval '1 second' FROM client c")
    naive = [t.replace(tzinfo=None) for t in
             (first - config.settings().reminder_after, first + timedelta(days=2), first)]
    sealed = _sealed_token()
    db.database.execute_sql(sql, (firm, sealed, naive[0], step, naive[1], step, naive[2], step))
    db.database.execute_sql("ANALYZE")
    return first.timestamp(), (first + window).timestamp()


def _sealed_token() -> str:
    """One sealed token for every bench invite: a reminder repeats the link (the
    bench measures the sending, not the minting)."""
    from core.platform import tokens

    return tokens.seal(tokens.mint())


def drain(args, twilio: TwilioStandIn, first_due: float, last_due: float) -> None:
    """The bulk run's catch-up at the last due time, and the clock's sweeps, until every
    reminder is out (or --budget seconds after the last one fell due)."""
    from datetime import UTC, datetime

    for at in range(int(first_due) + SLICE, int(last_due) + SLICE, SLICE):  # as its slices
        queues.catch_up_at("remind", datetime.fromtimestamp(min(at, last_due), UTC))
    deadline = last_due + args.budget
    next_sweep = 0.0

    while len(twilio.sent()) < args.clients and time.time() < deadline:
        if time.monotonic() >= next_sweep:
            sweep.run()
            next_sweep = time.monotonic() + SWEEP_EVERY
        time.sleep(0.5)
    written = Message.select().where(Message.kind == "auto_reminder").count()
    wait_for(lambda: len(twilio.sent()) >= written, timeout=30.0)


def report(args, twilio: TwilioStandIn, first_due: float, scenario: Scenario) -> None:
    sent = sorted(twilio.sent(), key=lambda a: a.monotonic)
    per_number = collections.Counter(a.to for a in sent)
    duplicates = sum(n - 1 for n in per_number.values())
    wall = [a.wall for a in sent]
    span = wall[-1] - wall[0] if len(wall) > 1 else 0.0
    rate = (len(sent) - 1) / span if span else 0.0
    print(f"  reminders texted: {len(sent):,} of {args.clients:,}, {duplicates} duplicates")
    print(f"  first text {wall[0] - first_due:+.1f} s after the first was due; last text "
          f"{wall[-1] - first_due:.1f} s after it (the due minute, then the sender's pace)")
    print(f"  achieved: {rate:.1f} texts/s first to last text = {100 * rate / args.rate:.1f}% "
          f"of SMS_RATE={args.rate:g}; busiest 1-second window {twilio.busiest(1.0)}")
    print(f"  workers' CPU: {scenario.cpu:.1f} s, {1000 * scenario.cpu / max(len(sent), 1):.1f} "
          "ms a reminder")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--window", type=float, default=WINDOW.total_seconds(),
                        help="seconds over which the reminders fall due (default 60)")
    parser.add_argument("--budget", type=float, default=1200.0,
                        help="seconds after the last reminder falls due before giving up")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, latency=0.02) as twilio, \
            tempfile.TemporaryDirectory() as folder:
        settings = setup(args, twilio)
        at = time.monotonic()
        first_due, last_due = load(args.clients, timedelta(seconds=args.window))
        print(f"\nreminder burst: {args.clients:,} reminders due within {args.window:g} s, "
              f"SMS_RATE={args.rate:g}, {args.workers} workers (loaded in "
              f"{time.monotonic() - at:.1f} s)")
        env = worker_env(settings, SMS_RATE=str(args.rate), TWILIO_ACCOUNT_SID=ACCOUNT_SID,
                         TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_FROM_NUMBER=FROM_NUMBER,
                         TWILIO_API_URL=twilio.url, SLACK_BOT_TOKEN="")
        scenario = Scenario(env, Path(folder))
        try:
            assert wiring.use_queue(settings), "Redis not available"
            start_workers(scenario, args.workers, queues.connection())
            drain(args, twilio, first_due, last_due)
        finally:
            scenario.cpu = sum(cpu_seconds(worker.pid) for worker in scenario.workers)
            for worker in scenario.workers:
                kill_tree(worker)
            wiring.inline()
        report(args, twilio, first_due, scenario)


if __name__ == "__main__":
    main()
