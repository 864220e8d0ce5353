"""Bulk runs on real workers: two `rq` worker processes share a run at SMS_RATE
through the Twilio stand-in (real SDK, real HTTP), on PostgreSQL and Redis.

One worker is SIGKILLed mid-run and replaced, and a staff invite sent mid-run
overtakes the bulk backlog (the `high` queue). No second of texts holds more than
the rate, every eligible client gets exactly one text, the skipped ones say why.
Then: cancel stops the rest, and "retry failed" re-sends only the failed ones.
"""

from __future__ import annotations

import collections
import logging
import time
from datetime import timedelta

import pytest

from core import bulk, clients, config, firms, invites, optouts, sweep
from core.models import BulkItem, BulkRun, Message
from jobs import queues
from tests.helpers import kill_tree, start_worker, wait_for, worker_env
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
        self.env = worker_env(settings, SMS_RATE=str(rate), TWILIO_ACCOUNT_SID=ACCOUNT_SID,
                              TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_FROM_NUMBER=FROM_NUMBER,
                              TWILIO_API_URL=self.twilio.url, SLACK_BOT_TOKEN="")
        return firms.create("Bulk & Co", admin_email="b@bulk.example", admin_password="x" * 12)

    def install(self):
        """From here on, the test process enqueues like the web app does."""
        assert queues.install(config.settings())

    def worker(self, name: str):
        process = start_worker(self.env, self.tmp_path, name)
        self.workers.append(process)
        return process

    def close(self):
        for process in self.workers:
            kill_tree(process)
        queues.uninstall()


@pytest.fixture
def stack(pg_url, twilio, redis_conn, tmp_path):
    built = Stack(pg_url, twilio, tmp_path)
    quiet = logging.getLogger("werkzeug")
    level, _ = quiet.level, quiet.setLevel(logging.WARNING)  # a line per text otherwise
    yield built
    built.close()
    quiet.setLevel(level)


def run_finished(run_id: int, statuses=("done",)) -> bool:
    return BulkRun.get_by_id(run_id).status in statuses


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


def wait_done_with_sweeps(run_id: int, timeout: float) -> None:
    """Wait for the run to finish; the sweep (what `ledgersync cron` runs every
    minute, here with short grace periods) is what puts an item a killed worker held
    in `sending` back in the queue (core.sweep.run -> bulk.recover -> bulk.kick), and
    recovers a text the killed worker left `sending` or `pending`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if wait_for(lambda: run_finished(run_id), timeout=4.0):
            return
        sweep.run(pending_grace=GRACE, stuck_after=GRACE)
    raise AssertionError(f"run not done: {bulk.progress(run_id).counts}")


def test_bulk_run_on_two_workers_one_killed(stack, twilio):
    firm = stack.setup(RATE)
    for i in range(N):
        clients.add(firm, f"Client {i:03}", phone=phone(i))
    walk_in = clients.add(firm, "Walk In", phone="+12125559999")  # not in the run
    make_skipped(firm)
    names = "\n".join([f"Client {i:03}" for i in range(N)] + list(SKIPPED))
    plan = bulk.prepare(firm, "list", names=names, channel="sms")
    assert (plan.sms, plan.email, len(plan.skipped)) == (N, 0, len(SKIPPED))
    run_id = plan.run.id
    stack.install()
    workers = [stack.worker("a"), stack.worker("b")]
    before = len(twilio.sent())  # Penny's invite
    started = time.monotonic()
    assert bulk.start(run_id)

    twilio.wait_for(before + 50, timeout=20)
    invites.send(walk_in, "sms")  # staff's own invite: the `high` queue, not behind the run
    twilio.wait_for(before + 100, timeout=20)
    kill_tree(workers[0])  # machine death, mid-run, with the job it was running
    killed_at = len(twilio.sent()) - before
    stack.worker("c")
    time.sleep(GRACE.total_seconds() + 0.5)
    # The killed worker may have held an item in `sending` (and its text): only the
    # sweep recovers those, so run it as cron would.
    sweep.run(pending_grace=GRACE, stuck_after=GRACE)
    wait_done_with_sweeps(run_id, timeout=35)
    numbers = {phone(i) for i in range(N)}
    # `done` is written once no item is left to claim; the last text may still be on its way.
    twilio.wait_for(before + N + 1, timeout=5)
    total = time.monotonic() - started

    texts = [a for a in twilio.sent() if a.to in numbers]
    per_number = collections.Counter(a.to for a in texts)
    duplicates = sum(n - 1 for n in per_number.values())
    busiest = twilio.busiest(1.0)
    span = texts[-1].monotonic - texts[0].monotonic
    staff = twilio.sent("+12125559999")
    after_staff = [a for a in texts if a.monotonic > staff[0].monotonic] if staff else []
    print(f"\nbulk on workers: {len(texts)} texts in {total:.1f} s (first to last "
          f"{span:.1f} s), {len(texts) / total:.1f} texts/s overall, "
          f"{(len(texts) - 1) / span:.1f} texts/s while sending, SMS_RATE={RATE}; "
          f"busiest second {busiest}; duplicates {duplicates}; worker killed after "
          f"{killed_at} texts; staff invite arrived with {len(after_staff)} bulk texts after it")

    assert busiest <= RATE
    assert set(per_number) == numbers and duplicates == 0
    assert len(staff) == 1 and len(after_staff) >= 30
    assert staff[0].monotonic < texts[-1].monotonic
    result = outcomes(run_id)
    assert {label: result[label] for label in SKIPPED} == {
        label: ("skipped", reason) for label, reason in SKIPPED.items()}
    assert all(result[f"Client {i:03}"] == ("sent", None) for i in range(N))
    assert BulkRun.get_by_id(run_id).status == "done"
    assert not Message.select().where(Message.status.in_(["pending", "sending"]),
                                      Message.channel == "sms").exists()
    assert total < 60


def add_crowd(firm, count: int) -> set[str]:
    for i in range(count):
        clients.add(firm, f"Client {i:03}", phone=phone(i))
    return {phone(i) for i in range(count)}


def test_cancel_stops_the_rest(stack, twilio):
    firm = stack.setup(10)
    numbers = add_crowd(firm, 60)
    plan = bulk.prepare(firm, "not_invited", channel="sms")
    stack.install()
    stack.worker("a"), stack.worker("b")
    assert bulk.start(plan.run.id)
    twilio.wait_for(10, timeout=20)
    at_cancel = len(twilio.sent())
    stopped = bulk.cancel(plan.run.id, actor="test")
    time.sleep(2.5)  # 25 more texts at 10 a second if the run went on
    texts = [a for a in twilio.sent() if a.to in numbers]
    print(f"\ncancel: {at_cancel} texts when canceled, {len(texts)} in the end, "
          f"{stopped} items canceled")
    assert len(texts) - at_cancel <= 2  # only those already claimed and waiting their turn
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
    plan = bulk.prepare(firm, "not_invited", channel="sms")
    stack.install()
    stack.worker("a"), stack.worker("b")
    twilio.fail_next(3, status=400, code=21408)  # the first three texts are refused
    assert bulk.start(plan.run.id)
    assert wait_for(lambda: run_finished(plan.run.id), timeout=20)
    failed = {item.client.phone for item in bulk.failures(plan.run.id)}
    assert len(failed) == 3
    assert {a.to for a in twilio.sent()} == numbers - failed

    assert bulk.retry_failed(plan.run.id) == 3
    bulk.kick(plan.run.id)
    assert wait_for(lambda: run_finished(plan.run.id), timeout=20)
    accepted = collections.Counter(a.to for a in twilio.sent())
    attempts = collections.Counter(form["To"] for method, _, form in twilio.requests
                                   if method == "POST")
    print(f"\nretry failed: {sorted(failed)} failed, then accepted on retry; "
          f"{sum(accepted.values())} texts accepted for {len(numbers)} clients")
    assert accepted == {number: 1 for number in numbers}
    assert attempts == {number: 2 if number in failed else 1 for number in numbers}
    assert collections.Counter(o for o, _ in outcomes(plan.run.id).values()) == {"sent": 20}
