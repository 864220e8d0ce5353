"""Bulk runs on real workers: two `rq` worker processes share a run at SMS_RATE
through the Twilio stand-in (real SDK, real HTTP), on PostgreSQL and Redis.

One worker is SIGKILLed mid-run and replaced, and a staff invite sent mid-run
overtakes the bulk backlog (the `high` queue). No second of texts holds more than
the rate, every eligible client gets exactly one text, the skipped ones say why.
Then: cancel stops the rest, and "retry failed" re-sends only the failed ones.

Only what holds on any machine is asserted here; how fast it goes (texts a second,
total time) is measured by `python -m bench.bulk_pacing` (see README, "Benchmarks").
No test sleeps a fixed time: each waits for a condition, with a cap (PATIENCE) that
only a broken run reaches.
"""

from __future__ import annotations

import collections
import logging
import time
from datetime import timedelta

import pytest

import wiring
from core.firms import firms
from core.invitations import bulk_plan, bulk_runs, bulk_sending, clients, invites, sweep
from core.messaging import optouts
from core.platform import config
from core.records import BulkItem, BulkRun, Client, Message
from tests.helpers import bulk_settled, kill_tree, start_worker, wait_for, worker_env
from tests.twilio_standin import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER

pytestmark = pytest.mark.slow

N = 300
RATE = 30
SKIPPED = {
    "Nora Nothing": "no mobile number or email address",
    "Olive Optout": "opted out",
    "Penny Pending": "a valid invite is still pending",
    "Eddie Emailonly": "no mobile number",
    "Ursula Unknown": "unknown name",
}
GRACE = timedelta(seconds=2)  # the sweep's stuck_after / pending_grace, shortened
SWEEP_EVERY = 3.0  # seconds between sweeps while a test waits (`ledgersync cron`: a minute)
PATIENCE = 300.0  # seconds: the cap on any one wait, for a broken run, never a pace to keep
WALK_IN = "+12125559999"
OVERTAKEN = 30  # bulk texts that must still be behind the staff invite when it arrives


def phone(i: int) -> str:
    return f"+1212555{1000 + i:04}"


class Stack:
    """PostgreSQL, Redis, the stand-in and real workers, configured alike."""

    def __init__(self, pg_url, twilio, tmp_path):
        self.pg_url, self.twilio, self.tmp_path = pg_url, twilio, tmp_path
        self.workers: list = []
        self.env: dict = {}

    def setup(self, rate: float):
        from tests.conftest import bind_empty, make_settings

        settings = make_settings(self.pg_url, quiet_hours=None, sms_rate=float(rate),
                                 twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                                 twilio_from_number=FROM_NUMBER, twilio_api_url=self.twilio.url)
        bind_empty(settings)  # also resets senders, dispatcher and schedule to inline
        # A busy machine (the suite, CI, CPU burners): texts reach the stand-in with
        # more jitter than on a quiet one, so slots get the margin such a deployment
        # would set (5 %: 50 ms) — the rule tested is the same: no second above the rate.
        self.env = worker_env(settings, SMS_RATE=str(rate), TWILIO_ACCOUNT_SID=ACCOUNT_SID,
                              TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_FROM_NUMBER=FROM_NUMBER,
                              TWILIO_API_URL=self.twilio.url, SLACK_BOT_TOKEN="",
                              PACE_MARGIN="5%")
        return firms.create("Bulk & Co", admin_email="b@bulk.example", admin_password="x" * 12)

    def install(self):
        """From here on, the test process enqueues like the web app does."""
        assert wiring.use_queue(config.settings())

    def worker(self, name: str):
        process = start_worker(self.env, self.tmp_path, name)
        self.workers.append(process)
        return process

    def close(self):
        for process in self.workers:
            kill_tree(process)
        wiring.inline()


@pytest.fixture
def stack(pg_url, twilio, redis_conn, tmp_path):
    built = Stack(pg_url, twilio, tmp_path)
    quiet = logging.getLogger("werkzeug")
    level, _ = quiet.level, quiet.setLevel(logging.WARNING)  # a line per text otherwise
    yield built
    built.close()
    quiet.setLevel(level)


def outcomes(run_id: int) -> dict[str, tuple[str, str | None]]:
    return {i.label: (i.outcome, i.reason)
            for i in BulkItem.select().where(BulkItem.run == run_id)}


def make_skipped(firm) -> None:
    clients.add(firm, "Nora Nothing")
    clients.add(firm, "Olive Optout", phone="+12125558001")
    optouts.opt_out("+12125558001", "keyword")
    pending = clients.add(firm, "Penny Pending", phone="+12125558002")
    invites.send(pending, "sms")  # inline (jobs not installed yet): one text, before the run
    clients.add(firm, "Eddie Emailonly", email="eddie@example.com")


def settle_with_sweeps(run_id: int) -> None:
    """Wait until the run is settled (`tests.helpers.bulk_settled`), sweeping meanwhile.
    The sweep (what `ledgersync cron` runs every minute, here with short grace periods)
    is what puts an item a killed worker held in `sending` back in the queue
    (sweep.run -> bulk_sending.recover -> bulk_sending.kick), and recovers a text the
    killed worker left `sending` or `pending`: it takes only what has been stuck longer
    than GRACE, so no wait for the grace is needed, only sweeps until nothing is left."""
    last_sweep = None

    def swept_and_settled() -> bool:
        nonlocal last_sweep
        if bulk_settled(run_id):
            return True
        if last_sweep is None or time.monotonic() - last_sweep >= SWEEP_EVERY:
            sweep.run(pending_grace=GRACE, stuck_after=GRACE)
            last_sweep = time.monotonic()
        return False

    if not wait_for(swept_and_settled, timeout=PATIENCE):
        raise AssertionError(f"run not settled: {bulk_runs.progress(run_id).counts}")


def test_bulk_run_on_two_workers_one_killed(stack, twilio):
    firm = stack.setup(RATE)
    for i in range(N):
        clients.add(firm, f"Client {i:03}", phone=phone(i))
    walk_in = clients.add(firm, "Walk In", phone=WALK_IN)  # not in the run
    make_skipped(firm)
    names = "\n".join([f"Client {i:03}" for i in range(N)] + list(SKIPPED))
    plan = bulk_plan.prepare(firm, "list", names=names, channel="sms")
    assert (plan.sms, plan.email, len(plan.skipped)) == (N, 0, len(SKIPPED))
    run_id = plan.run.id
    stack.install()
    workers = [stack.worker("a"), stack.worker("b")]
    before = len(twilio.sent())  # Penny's invite
    assert bulk_sending.start(run_id)

    twilio.wait_for(before + 50, timeout=PATIENCE)
    at_invite = len(twilio.sent()) - before
    invites.send(walk_in, "sms")  # staff's own invite: the `high` queue, not behind the run
    # Its text first, then the kill: whether it overtook the backlog is then a question of
    # queues only, not of how soon the sweep recovers what the killed worker held.
    twilio.wait_for(1, to=WALK_IN, timeout=PATIENCE)
    twilio.wait_for(before + 100, timeout=PATIENCE)
    kill_tree(workers[0])  # machine death, mid-run, with the job it was running
    killed_at = len(twilio.sent()) - before
    stack.worker("c")
    settle_with_sweeps(run_id)

    numbers = {phone(i) for i in range(N)}
    accepted = twilio.sent()  # in the order the stand-in accepted them
    texts = [a for a in accepted if a.to in numbers]
    per_number = collections.Counter(a.to for a in texts)
    duplicates = sum(n - 1 for n in per_number.values())
    busiest = twilio.busiest(1.0)
    staff = [i for i, a in enumerate(accepted) if a.to == WALK_IN]
    behind_staff = sum(1 for a in accepted[staff[0] + 1:] if a.to in numbers) if staff else 0
    print(f"\nbulk on workers: {len(texts)} texts, SMS_RATE={RATE}; busiest second {busiest}; "
          f"duplicates {duplicates}; worker killed after {killed_at} texts; staff invite made "
          f"after {at_invite} bulk texts arrived with {behind_staff} bulk texts behind it")

    assert busiest <= RATE
    assert set(per_number) == numbers and duplicates == 0
    assert len(accepted) == before + N + 1  # Penny's, the run's, the staff invite: no other
    # Ordering, not timing: had the staff invite queued behind the run, no bulk text would
    # come after it. It may wait for the texts already in the workers' hands and for a
    # worker to take it up, so not all of the backlog is behind it — at least OVERTAKEN.
    assert len(staff) == 1 and behind_staff >= OVERTAKEN
    result = outcomes(run_id)
    assert {label: result[label] for label in SKIPPED} == {
        label: ("skipped", reason) for label, reason in SKIPPED.items()}
    assert all(result[f"Client {i:03}"] == ("sent", None) for i in range(N))
    assert BulkRun.get_by_id(run_id).status == "done"
    assert not Message.select().where(Message.status.in_(["pending", "sending"]),
                                      Message.channel == "sms").exists()


def add_crowd(firm, count: int) -> set[str]:
    for i in range(count):
        clients.add(firm, f"Client {i:03}", phone=phone(i))
    return {phone(i) for i in range(count)}


def test_cancel_stops_the_rest(stack, twilio):
    firm = stack.setup(10)
    numbers = add_crowd(firm, 60)
    plan = bulk_plan.prepare(firm, "not_invited", channel="sms")
    stack.install()
    stack.worker("a"), stack.worker("b")
    assert bulk_sending.start(plan.run.id)
    twilio.wait_for(10, timeout=PATIENCE)
    stopped = bulk_sending.cancel(plan.run.id, actor="test")
    at_cancel = len(twilio.sent())  # counted after the cancel: at least those out before it
    # Not "wait a while and see that no more came": wait until the run is settled (every
    # item sent or canceled, no text pending or being sent; tests.helpers.bulk_settled).
    # From then on nothing of it can go out — workers only claim queued items and deliver
    # pending texts, and there are none — so the counts below are final, however slow
    # the machine.
    assert wait_for(lambda: bulk_settled(plan.run.id), timeout=PATIENCE)
    texts = [a for a in twilio.sent() if a.to in numbers]
    print(f"\ncancel: {at_cancel} texts when canceled, {len(texts)} in the end, "
          f"{stopped} items canceled")
    # Only those already claimed when the cancel landed: one item at a time per worker.
    assert len(texts) - at_cancel <= 2
    result = list(outcomes(plan.run.id).values())
    counts = collections.Counter(outcome for outcome, _ in result)
    assert counts["sent"] == len(texts) and counts["canceled"] == stopped
    assert counts["sent"] + counts["canceled"] == 60
    assert all(reason == "canceled" for outcome, reason in result if outcome == "canceled")
    assert BulkRun.get_by_id(plan.run.id).status == "canceled"
    assert len({a.to for a in texts}) == len(texts)


def test_retry_failed_resends_only_the_failed(stack, twilio):
    firm = stack.setup(10)
    numbers = add_crowd(firm, 20)
    plan = bulk_plan.prepare(firm, "not_invited", channel="sms")
    stack.install()
    stack.worker("a"), stack.worker("b")
    twilio.fail_next(3, status=400, code=21408)  # the first three texts are refused
    assert bulk_sending.start(plan.run.id)
    # Settled, not just `done`: the run is marked done as soon as no item is left to
    # claim, while the last texts may still be on their way and a refused one's item
    # not yet marked failed.
    assert wait_for(lambda: bulk_settled(plan.run.id), timeout=PATIENCE)
    failed = {item.client.phone for item in bulk_runs.failures(plan.run.id)}
    assert len(failed) == 3
    assert {a.to for a in twilio.sent()} == numbers - failed

    assert bulk_sending.retry_failed(plan.run.id) == 3
    bulk_sending.kick(plan.run.id)
    assert wait_for(lambda: bulk_settled(plan.run.id), timeout=PATIENCE)
    accepted = collections.Counter(a.to for a in twilio.sent())
    attempts = collections.Counter(form["To"] for method, _, form in twilio.requests
                                   if method == "POST")
    print(f"\nretry failed: {sorted(failed)} failed, then accepted on retry; "
          f"{sum(accepted.values())} texts accepted for {len(numbers)} clients")
    assert accepted == {number: 1 for number in numbers}
    assert attempts == {number: 2 if number in failed else 1 for number in numbers}
    assert collections.Counter(o for o, _ in outcomes(plan.run.id).values()) == {"sent": 20}


FAST_RATE = 200  # a short code's pace, on the test's two workers
CROWD = 1000
STAFF_AFTER = 200  # bulk texts out when the staff invite is made
FAST_OVERTAKEN = 100  # bulk texts that must still be behind it when it arrives


def test_a_staff_invite_overtakes_a_200_a_second_run(stack, twilio):
    """At 200 texts a second, several texts in flight on each worker: a staff invite made
    mid-run goes ahead of the backlog (ordering is asserted; how long it took is printed
    here and measured by `bench.bulk_pacing --staff-after`)."""
    twilio.latency = 0.02  # Twilio's own answer time: texts are in flight at once
    firm = stack.setup(FAST_RATE)
    numbers = [f"+1917{2000000 + i:07}" for i in range(CROWD)]
    Client.insert_many([{"firm": firm, "name": f"Crowd {i:04}", "name_key": f"crowd {i:04}",
                         "phone": number, "banks": []} for i, number in enumerate(numbers)]
                       ).execute()
    walk_in = clients.add(firm, "Walk In", phone=WALK_IN)
    plan = bulk_plan.prepare(firm, "list", names="\n".join(f"Crowd {i:04}" for i in range(CROWD)),
                        channel="sms")
    assert plan.sms == CROWD
    stack.install()
    stack.worker("a"), stack.worker("b")
    assert bulk_sending.start(plan.run.id)
    twilio.wait_for(STAFF_AFTER, timeout=PATIENCE)
    made = time.monotonic()
    invites.send(walk_in, "sms")  # the `high` queue
    staff = twilio.wait_for(1, to=WALK_IN, timeout=PATIENCE)[0]
    assert wait_for(lambda: bulk_settled(plan.run.id), timeout=PATIENCE)

    accepted = twilio.sent()
    texts = [a for a in accepted if a.to in set(numbers)]
    behind = sum(1 for a in texts if a.monotonic > staff.monotonic)
    print(f"\nat {FAST_RATE}/s: staff invite made after {STAFF_AFTER} bulk texts reached the "
          f"stand-in {1000 * (staff.monotonic - made):.0f} ms later with {behind} bulk texts "
          f"behind it; busiest second {twilio.busiest(1.0)}")
    assert twilio.busiest(1.0) <= FAST_RATE
    assert collections.Counter(a.to for a in texts) == {number: 1 for number in numbers}
    assert len(twilio.sent(WALK_IN)) == 1 and behind >= FAST_OVERTAKEN
    assert collections.Counter(o for o, _ in outcomes(plan.run.id).values()) == {"sent": CROWD}
