"""What one job costs a worker: an RQ no-op, a `deliver` of a text to the Twilio
stand-in, a `remind`, and a firm notice to the Slack stand-in.

For each kind, N jobs are enqueued on `high` between two marks, then one real
`ledgersync worker` process (SimpleWorker, as in production) is started; the marks
run in the worker and record its clock and its CPU time (`time.process_time`: every
thread of the worker). Per job: wall = time between the marks / N, CPU = the
worker's CPU time between the marks / N; also Redis commands and PostgreSQL
sessions and transactions per job. The worker's start-up is outside the marks.

    python -m bench.jobs [--jobs 1000] [--only noop,deliver,remind,notice] [--latency 0]
    python -m bench.jobs --profile deliver   # cProfile of the same jobs, in this process
    (servers: bench/servers.py)

A reminder's own delivery is enqueued on `high` behind the marks, so it is not
counted in `remind`. The bench database is dropped and created again; the Redis
database is flushed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/jobs.py`: this folder must not shadow `jobs`
    sys.path[0] = str(Path(__file__).resolve().parents[1])

KINDS = ("noop", "deliver", "remind", "notice")
NOTICE_CHANNEL = "C0NOTICES"


# --- what the worker runs ---------------------------------------------------------------


def noop() -> None:
    """The cheapest job there is: what RQ alone costs."""


def mark(name: str) -> None:
    """Run in the worker: its clock and its CPU time so far, kept in Redis."""
    from rq import get_current_job

    get_current_job().connection.hset("bench:marks", name, f"{time.monotonic()} "
                                                           f"{time.process_time()}")


# --- the bench (everything below runs in the bench's own process) ---------------------


def setup(args, twilio, slack):

    from bench import servers
    from core.messaging import outbound
    from core.platform import config, db
    from core.records import migrations
    from tests.twilio_standin import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER

    settings = config.Settings(
        database_url=servers.postgres_url(), redis_url=servers.redis_url(),
        secret_key="bench-secret-key-0123456789",
        public_base_url="https://connect.example.com", quiet_hours=None, sms_rate=1000.0,
        email_rate=1000.0, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
        twilio_from_number=FROM_NUMBER, twilio_api_url=twilio.url,
        slack_bot_token="xoxb-bench", slack_api_url=slack.api_url)
    config.use(settings)
    outbound.reset_senders()
    db.bind(settings.database_url)
    migrations.upgrade()
    return settings


def make_work(count: int) -> dict[str, list[tuple[str, int]]]:
    """Every kind's jobs (task, argument), their state written as the app writes it."""
    from core import ports
    from core.firms import firms
    from core.invitations import clients, invites
    from core.messaging import notices
    from core.platform import clock
    from core.records import Firm, Invite

    # written, not dispatched: the bench enqueues
    ports.install(ports.current().with_(dispatcher=lambda ids: None, scheduler=lambda *a: None))
    firm = firms.create("Bench LLP", admin_email="b@bench.example", admin_password="x" * 12)
    Firm.update(notify_channel=NOTICE_CHANNEL).where(Firm.id == firm.id).execute()
    texts, reminded = [], []
    for i in range(2 * count):
        client = clients.add(firm, f"Client {i:05}", phone=f"+1212{5550000 + i:07}")
        sent = invites.send(client, "sms")
        (texts if i < count else reminded).append(sent)
    Invite.update(reminder_due_at=clock.now()).where(
        Invite.id.in_([s.invite.id for s in reminded])).execute()
    told = [notices.write(firm.id, "expired", f"Bench notice {i}", dedupe_key=f"bench-{i}")
            for i in range(count)]
    return {"noop": [("bench.jobs.noop", 0)] * count,
            "deliver": [("jobs.tasks.deliver", s.message.id) for s in texts],
            "remind": [("jobs.tasks.remind", s.invite.id) for s in reminded],
            "notice": [("jobs.tasks.deliver", m.id) for m in told]}


def enqueue(queue, work) -> tuple:
    """Mark, the jobs, mark — with the options the app gives them."""
    from rq import Queue

    from jobs import queues

    def job(task, arg):
        if task == "bench.jobs.noop":
            return Queue.prepare_data(task, ())
        options = dict(queues.JOB_OPTIONS[task.rsplit(".", 1)[1]])
        options["timeout"] = options.pop("job_timeout")
        return Queue.prepare_data(task, (arg,), **options)

    queue.enqueue("bench.jobs.mark", "first")
    queue.enqueue_many([job(task, arg) for task, arg in work])
    return queue.enqueue("bench.jobs.mark", "last")


def counters(redis) -> tuple[int, int, int]:
    """Redis commands, PostgreSQL sessions and committed transactions so far."""
    from core.platform import db

    row = db.database.execute_sql(
        "SELECT sessions, xact_commit FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    return redis.info("stats")["total_commands_processed"], int(row[0]), int(row[1])


def run_kind(kind: str, work, env: dict, folder: Path) -> dict:
    from core.platform import db
    from jobs import queues
    from tests.helpers import kill_tree, start_worker, wait_for

    redis = queues.connection()
    db.database.execute_sql("SELECT pg_stat_clear_snapshot()")
    redis.delete("bench:marks")
    last = enqueue(queues.queue("high", redis), work)
    before = counters(redis)
    worker = start_worker(env, folder, kind)
    try:
        def over() -> bool:
            if worker.poll() is not None:
                raise SystemExit(f"{kind}: the worker stopped; see {folder}/{kind}.log")
            return last.get_status(refresh=True) in {"finished", "failed"}

        if not wait_for(over, 600):
            raise SystemExit(f"{kind}: the worker did not finish; see {folder}/{kind}.log")
        after = counters(redis)
        failed = queues.queue("high", redis).failed_job_registry.count
    finally:
        kill_tree(worker)
        # Redis may still hand the dead worker's blocking pop the next job pushed: give it
        # time to see the connection closed before the next kind is enqueued.
        time.sleep(1.0)
    marks = {k.decode(): [float(x) for x in v.split()]
             for k, v in redis.hgetall("bench:marks").items()}
    if set(marks) != {"first", "last"}:
        raise SystemExit(f"{kind}: marks {marks}, last job {last.get_status(refresh=False)}; "
                         f"see the worker's log")
    (t0, cpu0), (t1, cpu1) = marks["first"], marks["last"]
    n = len(work)
    return {"wall": (t1 - t0) / n, "cpu": (cpu1 - cpu0) / n, "failed": failed,
            "redis": (after[0] - before[0]) / n, "sessions": (after[1] - before[1]) / n,
            "commits": (after[2] - before[2]) / n}


def profile(kind: str, work, settings) -> None:
    """The same jobs in this process, under cProfile: the top costs."""
    import cProfile
    import pstats

    from rq import SimpleWorker

    import wiring
    from jobs import queues

    wiring.wire(settings)  # as the worker process starts: senders, queues
    queue = queues.queue("high")
    enqueue(queue, work)
    worker = SimpleWorker([queue], connection=queues.connection())
    profiler = cProfile.Profile()
    profiler.runcall(worker.work, burst=True, max_jobs=len(work) + 2, logging_level="WARNING")
    stats = pstats.Stats(profiler).strip_dirs().sort_stats("cumulative")
    stats.print_stats(40)
    stats.sort_stats("tottime").print_stats(25)


def report(results: dict) -> None:
    base = results.get("noop")
    print(f"\n  {'job':<8} {'wall/job':>9} {'CPU/job':>9} {'× no-op (wall, CPU)':>20} "
          f"{'Redis cmds':>10} {'PG sessions':>11} {'PG commits':>10} failed")
    for kind, r in results.items():
        ratio = (f"{r['wall'] / base['wall']:.1f}×, {r['cpu'] / base['cpu']:.1f}×"
                 if base else "-")
        print(f"  {kind:<8} {1000 * r['wall']:>7.2f}ms {1000 * r['cpu']:>7.2f}ms {ratio:>20} "
              f"{r['redis']:>10.1f} {r['sessions']:>11.2f} {r['commits']:>10.1f} {r['failed']}")


def main() -> None:
    import argparse
    import logging
    import tempfile

    from tests.helpers import worker_env
    from tests.slack_standin import SlackStandIn
    from tests.twilio_standin import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, TwilioStandIn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--only", default=",".join(KINDS))
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds the Twilio stand-in takes to answer (default 0)")
    parser.add_argument("--logs", help="keep the workers' logs in this folder")
    parser.add_argument("--profile", choices=KINDS, help="cProfile one kind in this process")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    kinds = [k for k in args.only.split(",") if k in KINDS]
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, latency=args.latency) as twilio, \
            SlackStandIn() as slack, tempfile.TemporaryDirectory() as folder:
        settings = setup(args, twilio, slack)
        at = time.monotonic()
        work = make_work(args.jobs)
        print(f"\njobs: {args.jobs:,} of each kind, one worker, PostgreSQL "
              f"(state written in {time.monotonic() - at:.0f} s)")
        if args.profile:
            profile(args.profile, work[args.profile], settings)
            return
        env = worker_env(settings, SMS_RATE="1000", EMAIL_RATE="1000",
                         TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                         TWILIO_FROM_NUMBER=FROM_NUMBER, TWILIO_API_URL=twilio.url,
                         SLACK_BOT_TOKEN="xoxb-bench", SLACK_API_URL=slack.api_url)
        logs = Path(args.logs or folder)
        logs.mkdir(parents=True, exist_ok=True)
        results = {kind: run_kind(kind, work[kind], env, logs) for kind in kinds}
    report(results)
    print(f"  (texts accepted by the stand-in: {len(twilio.sent()):,}; notices posted: "
          f"{sum(1 for name, _ in slack.calls if name == 'chat.postMessage'):,})")


if __name__ == "__main__":
    main()
