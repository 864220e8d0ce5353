"""How close does a bulk run get to SMS_RATE, and does it ever exceed it?

Loads N clients with a mobile number into PostgreSQL, starts the Twilio stand-in
(real SDK, real HTTP) and W real RQ workers (`ledgersync worker`), then sends one
bulk run (`not_invited`, by SMS) at SMS_RATE and reports, from the stand-in's clock:
total time, texts/s achieved against the rate, the busiest 1-second window, the gaps
between consecutive texts, and duplicates.

    python -m bench.bulk_pacing [--clients 10000] [--rate 200] [--workers 2]
    (servers: bench/servers.py)

The scenario of `tests/test_bulk_workers.py`, timed (the test asserts only what holds
on any machine; how fast it goes is measured here):

    python -m bench.bulk_pacing --clients 300 --rate 30 --staff-after 50 --kill-after 100

`--staff-after K` makes a staff invite (the `high` queue) once K texts are out and
reports how long it took and how many bulk texts came after it; `--kill-after K`
SIGKILLs the first worker (with the job it is running) once K texts are out, starts
another, and runs the sweep as cron would (grace periods shortened to 2 s).

The bench database is dropped and created again; the Redis database is flushed.
Sending stops after --budget seconds (the run is canceled) when the workers can't
keep up with the rate; the numbers then cover what was sent until then.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis import Redis  # noqa: E402
from rq import Worker  # noqa: E402

import wiring
from bench import servers
from core import ports
from core.firms import firms
from core.invitations import bulk_plan, bulk_sending, clients, invites
from core.invitations import sweep as core_sweep
from core.platform import config, db
from core.platform.names import name_key
from core.records import Client, migrations
from jobs import queues
from tests.helpers import bulk_settled, descendants, kill_tree, start_worker, wait_for, worker_env
from tests.twilio_standin import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, TwilioStandIn

WALK_IN = "+13125550100"  # the staff invite's client: outside every --clients range
GRACE = timedelta(seconds=2)  # the sweep's grace periods after a kill, as in the test
SWEEP_EVERY = 3.0  # seconds between sweeps after a kill (`ledgersync cron`: a minute)


@dataclass
class Scenario:
    """The workers, and what happened along the way (counts are texts out at the time)."""

    env: dict
    folder: Path
    workers: list = field(default_factory=list)
    walk_in: Client | None = None
    staff_made: float | None = None  # monotonic
    staff_after: int | None = None
    killed_after: int | None = None
    last_sweep: float = 0.0
    cpu: float = 0.0  # seconds of CPU the workers used (with their children)


def setup(args, twilio: TwilioStandIn) -> config.Settings:
    url = f"sqlite:///{args.sqlite}/bench.db" if args.sqlite else servers.postgres_url()
    settings = config.Settings(
        database_url=url, redis_url=servers.redis_url(), secret_key="bench-secret-key-0123456789",
        public_base_url="https://connect.example.com", quiet_hours=None,
        sms_rate=float(args.rate), twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN, twilio_from_number=FROM_NUMBER, twilio_api_url=twilio.url)
    config.use(settings)
    # the sweep here may ask Twilio what it took
    ports.install(ports.current().with_(senders=wiring.choose_sender))
    db.bind(url)
    migrations.upgrade()
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


def along_the_way(args, scenario: Scenario, twilio: TwilioStandIn) -> None:
    """The staff invite, the kill and the sweeps, each when its time comes."""
    out = len(twilio.sent())
    if args.staff_after is not None and scenario.staff_made is None and out >= args.staff_after:
        scenario.staff_made, scenario.staff_after = time.monotonic(), out
        invites.send(scenario.walk_in, "sms")
    if args.kill_after is not None and scenario.killed_after is None and out >= args.kill_after:
        kill_tree(scenario.workers[0])
        scenario.killed_after = out
        scenario.workers.append(start_worker(scenario.env, scenario.folder, "replacement"))
    if scenario.killed_after is not None \
            and time.monotonic() - scenario.last_sweep >= SWEEP_EVERY:
        core_sweep.run(pending_grace=GRACE, stuck_after=GRACE)
        scenario.last_sweep = time.monotonic()


def run_until_settled(args, run_id: int, scenario: Scenario, twilio: TwilioStandIn) -> None:
    """Until every text is out (`tests.helpers.bulk_settled`), or `budget` seconds: then
    the run is canceled (what is measured is the pace, which the first minute shows as
    well as the whole run), and the texts already claimed go out."""
    deadline = time.monotonic() + args.budget
    while not bulk_settled(run_id):
        if time.monotonic() >= deadline:
            left = bulk_sending.cancel(run_id, actor="bench")
            print(f"  budget of {args.budget:.0f} s used up: canceled the {left:,} texts "
                  "not sent yet")
            # An item a killed worker held is never settled once the run is canceled.
            wait_for(lambda: bulk_settled(run_id), timeout=30.0)
            return
        along_the_way(args, scenario, twilio)
        time.sleep(0.2)


def report(args, twilio: TwilioStandIn, numbers: list[str], started: float,
           scenario: Scenario) -> None:
    accepted = sorted(twilio.sent(), key=lambda a: a.monotonic)
    texts = [a for a in accepted if a.to != WALK_IN]
    marks = [a.monotonic for a in texts]
    gaps = sorted((b - a) * 1000 for a, b in zip(marks, marks[1:], strict=False))
    per_number = collections.Counter(a.to for a in texts)
    duplicates = sum(n - 1 for n in per_number.values())
    total = marks[-1] - started
    span = marks[-1] - marks[0]
    overall, steady = len(texts) / total, (len(texts) - 1) / span
    interval = 1000 * (1 + args.margin) / args.rate
    print(f"  texts: {len(texts):,} accepted for {len(numbers):,} clients, "
          f"{len(set(numbers) - set(per_number)):,} not sent, {duplicates} duplicates")
    print(f"  total time: {total:.1f} s from start to last text (first text after "
          f"{marks[0] - started:.2f} s)")
    print(f"  achieved: {overall:.1f} texts/s overall = {100 * overall / args.rate:.1f}% of "
          f"SMS_RATE={args.rate:g}; {steady:.1f} texts/s first to last text = "
          f"{100 * steady / args.rate:.1f}%")
    print(f"  busiest 1-second window: {twilio.busiest(1.0)} texts, the staff invite's "
          f"included (limit {args.rate:g})")
    print(f"  gap between consecutive texts: p50 {statistics.median(gaps):.2f} ms, "
          f"p99 {gaps[int(0.99 * (len(gaps) - 1))]:.2f} ms, min {gaps[0]:.2f} ms, "
          f"max {gaps[-1]:.2f} ms (slot = {interval:.2f} ms)")
    print(f"  workers' CPU: {scenario.cpu:.1f} s, {1000 * scenario.cpu / len(texts):.1f} ms a text")
    if scenario.killed_after is not None:
        print(f"  worker killed after {scenario.killed_after:,} texts, one started in its place")
    staff = [a for a in accepted if a.to == WALK_IN]
    if scenario.staff_made is not None and staff:
        behind = sum(1 for a in texts if a.monotonic > staff[0].monotonic)
        print(f"  staff invite made after {scenario.staff_after:,} texts: accepted "
              f"{1000 * (staff[0].monotonic - scenario.staff_made):.0f} ms later, with "
              f"{behind:,} bulk texts behind it")
    elif scenario.staff_made is not None:
        print("  staff invite made, never accepted")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its descendants, from /proc."""
    total = 0
    for each in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError), open(f"/proc/{each}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def start_workers(scenario: Scenario, count: int, redis: Redis) -> None:
    """Start them and wait until each has registered with Redis (it takes jobs then)."""
    registered = Worker.count(connection=redis)
    scenario.workers += [start_worker(scenario.env, scenario.folder, f"w{i}")
                         for i in range(count)]
    if not wait_for(lambda: Worker.count(connection=redis) >= registered + count, 60.0):
        raise SystemExit(f"the workers did not start: see their logs in {scenario.folder}")


def prepare_only(args) -> None:
    """Choosing and checking the clients, timed, on SQLite or PostgreSQL (a third of
    them opted out, accepted or with an invite still pending: every check has work)."""
    with TwilioStandIn() as twilio, tempfile.TemporaryDirectory() as folder:
        args.sqlite = folder if args.prepare_only == "sqlite" else None
        setup(args, twilio)
        firm = firms.create("Bench LLP", admin_email="b@bench.example", admin_password="x" * 12)
        numbers = load_clients(firm, args.clients)
        mixed(firm, numbers)
        for selection in ("not_invited", "list"):
            names = "\n".join(f"Client {i:05}" for i in range(args.clients))
            at = time.monotonic()
            plan = bulk_plan.prepare(firm, selection, names=names, channel="sms")
            print(f"  {args.prepare_only}: {selection} of {args.clients:,} clients prepared in "
                  f"{time.monotonic() - at:.2f} s ({plan.sms:,} texts, "
                  f"{len(plan.skipped):,} skipped)")


def mixed(firm, numbers: list[str]) -> None:
    """Every third client opted out, every ninth accepted, every twelfth with an open
    invite (written as the app writes them)."""
    from core.invitations import links
    from core.messaging import optouts
    from core.platform import tokens

    # written, not sent: only the plan is timed
    ports.install(ports.current().with_(dispatcher=lambda ids: None, scheduler=lambda *a: None))
    clients_ = list(Client.select().where(Client.firm == firm).order_by(Client.id))
    for i, client in enumerate(clients_):
        if i % 3 == 0:
            optouts.opt_out(client.phone, "bench")
        elif i % 9 == 1 or i % 12 == 2:
            sent = invites.send(client, "sms")
            if i % 9 == 1:
                links.accept(tokens.unseal(sent.invite.token_sealed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--margin", type=float, default=config.Settings().pace_margin,
                        help="PACE_MARGIN: slots this much wider than 1/rate (default 0.025)")
    parser.add_argument("--latency", type=float, default=0.02,
                        help="seconds the Twilio stand-in takes to answer (default 0.02)")
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds of sending before the run is canceled (default 60)")
    parser.add_argument("--staff-after", type=int, metavar="K",
                        help="make a staff invite once K texts are out")
    parser.add_argument("--kill-after", type=int, metavar="K",
                        help="SIGKILL a worker once K texts are out and start another")
    parser.add_argument("--prepare-only", choices=["sqlite", "postgres"],
                        help="only time preparing the run, on this database")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if args.prepare_only:
        return prepare_only(args)
    args.sqlite = None
    begun = time.monotonic()
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, latency=args.latency) as twilio, \
            tempfile.TemporaryDirectory() as folder:
        settings = setup(args, twilio)
        firm = firms.create("Bench LLP", admin_email="b@bench.example", admin_password="x" * 12)
        numbers = load_clients(firm, args.clients)
        at = time.monotonic()
        plan = bulk_plan.prepare(firm, "not_invited", channel="sms")
        print(f"\nbulk pacing: {args.clients:,} clients, SMS_RATE={args.rate:g}, "
              f"{args.workers} workers, Twilio answering in {1000 * args.latency:.0f} ms "
              f"(prepare: {plan.sms:,} texts planned in {time.monotonic() - at:.1f} s, "
              f"eta {plan.eta_seconds:.0f} s)")
        env = worker_env(settings, SMS_RATE=str(args.rate), TWILIO_ACCOUNT_SID=ACCOUNT_SID,
                         TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_FROM_NUMBER=FROM_NUMBER,
                         TWILIO_API_URL=twilio.url, SLACK_BOT_TOKEN="",
                         PACE_MARGIN=str(args.margin))
        scenario = Scenario(env, Path(folder))
        scenario.walk_in = clients.add(firm, "Walk In", phone=WALK_IN)  # after: not in the run
        try:
            assert wiring.use_queue(settings), "Redis not available"
            start_workers(scenario, args.workers, queues.connection())  # time the run only
            started = time.monotonic()
            bulk_sending.start(plan.run.id)
            run_until_settled(args, plan.run.id, scenario, twilio)
        finally:
            scenario.cpu = sum(cpu_seconds(worker.pid) for worker in scenario.workers)
            for worker in scenario.workers:
                kill_tree(worker)
            wiring.inline()
        report(args, twilio, numbers, started, scenario)
    print(f"  (whole bench {time.monotonic() - begun:.0f} s)")


if __name__ == "__main__":
    main()
