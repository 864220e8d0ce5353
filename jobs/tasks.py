"""The jobs. Each loads its state from the database by id, calls core, and is
idempotent: running it twice, or after the work was done elsewhere, changes
nothing. A worker keeps its database connection from job to job (`db.kept`: one
per process and thread, checked before use), since opening one cost more than
most jobs (bench/jobs.py)."""

from __future__ import annotations

import functools
import logging
import math
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import UTC, datetime

from redis import RedisError

from core.invitations import bulk_sending, invites, reminders, schedule
from core.invitations import sweep as core_sweep
from core.messaging import deliveries, outbound
from core.platform import clock, db
from core.records import BulkRun, Invite, Status
from ops import context, metrics

from . import pacing, queues

log = logging.getLogger(__name__)


def unit_of_work(func):
    @functools.wraps(func)
    def run(*args, **kwargs):
        with db.kept():
            return func(*args, **kwargs)

    return run


@unit_of_work
def deliver(message_id: int, slot: float | None = None) -> str:
    """Send one message (client SMS/email or firm notice) in its slot of the
    sender's pace. A slot more than a second away is kept, and the job comes back
    for it (RQ's scheduler), so a backlog of texts never holds a worker that staff's
    answers are waiting for. A transient failure raises, and RQ retries with
    backoff (reserving a new slot); a permanent one is recorded, and the firm is told.
    Which slot, and how far is too far: `jobs.pacing`."""
    message = deliveries.find(message_id)
    if message is None or message.status != Status.PENDING:
        return message.status if message else "missing"
    with context.bound(firm_id=message.firm_id):  # for its log lines and error reports
        return _deliver(message, slot)


def _deliver(message, slot: float | None) -> str:
    message_id = message.id
    slot = pacing.slot_for(message.channel, slot, deliveries.slot_of(message))
    if pacing.too_far(slot):  # (the scheduler may bring it back early: again)
        if deliveries.wait_for_slot(message_id, datetime.fromtimestamp(slot, UTC)):
            queues.deliver_at(message_id, slot, lead=pacing.HOLD)
        return "waiting for its slot"
    message = deliveries.deliver(message_id, wait_turn=lambda _channel: pacing.until(slot),
                                 message=message)
    return message.status if message else "missing"


@unit_of_work
def remind(invite_id: int) -> str:
    """The automatic reminder, when due (see core.invitations.reminders)."""
    outcome = reminders.send_automatic(invite_id)
    if outcome.retry_at is not None:
        schedule.at("remind", invite_id, outcome.retry_at)
    return f"{outcome.result} {outcome.reason}".strip()


@unit_of_work
def expire(invite_id: int) -> str:
    """Record an invite's expiry and notify the firm, once."""
    if invites.expire(invite_id):
        return "expired"
    invite = Invite.get_or_none(Invite.id == invite_id)
    if invite is not None and invite.status(clock.now()) == "pending":
        schedule.at("expire", invite_id, invite.expires_at)  # early: come back on time
        return "not yet due"
    return "nothing to do"


@unit_of_work
def catch_up(task: str) -> str:
    """Every reminder or expiry due now (asked for by a bulk run, see `bulk_send`, or by
    the sweep), CATCH_UP_SLICE seconds at a time: with more due, the next slice is a
    job of its own, queued at once (a worker is never held for long, and a job's
    timeout never cuts a backlog short). Reminders go as a bulk run's texts do:
    several at once, each delivered here at the sender's pace (`_remind_due`)."""
    until = time.monotonic() + CATCH_UP_SLICE
    caught = (_remind_due(until) if task == "remind"
              else core_sweep.catch_up(task, until=until))
    if caught.more:
        queues.catch_up_now(task)
    return f"{caught.done} {task}{' (more to come)' if caught.more else ''}"


def _remind_due(until: float) -> core_sweep.CaughtUp:
    """The automatic reminders due, `senders_for(SMS_RATE)` at once, each sent and its
    text delivered in this job, at the sender's pace — not a delivery job each on
    `high`, where staff's answers would wait behind them. Makes way (ends the slice)
    when staff's sends wait, as a bulk run does."""
    now, seen, done = clock.now(), set(), 0
    width = senders_for(pacing.rate_for("sms"))
    make_way = _MakeWay(queues.queue("high"), queues.queue("paced"))
    while True:
        ids = [i for i in core_sweep.due_ids(reminders.due(now), core_sweep.BATCH)
               if i not in seen]
        if not ids:
            return core_sweep.CaughtUp(done, more=False)
        seen.update(ids)
        done += _remind_all(ids, now, width)
        if time.monotonic() >= until or make_way():
            return core_sweep.CaughtUp(done, more=True)


def _remind_all(ids: list[int], now: datetime, width: int) -> int:
    """Each reminder on one of `width` sender threads; how many were sent."""
    running, sent = set(), 0
    for invite_id in ids:
        if len(running) >= width:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            sent += sum(f.result() == "sent" for f in finished)
        running.add(_senders().submit(_remind_one, invite_id, now))
    return sent + sum(f.result() == "sent" for f in wait(running).done)


def _remind_one(invite_id: int, now: datetime) -> str:
    with db.kept():  # each sender thread keeps its own connection
        held: list[int] = []
        with outbound.held(held):
            outcome = reminders.send_automatic(invite_id, now)
        if outcome.retry_at is not None:  # quiet hours: come back in the client's morning
            schedule.at("remind", invite_id, outcome.retry_at)
        for message_id in held:
            try:
                deliveries.deliver(message_id, wait_turn=pacing.take_turn)
            except deliveries.TransientFailure:
                log.warning("message %s: delivery will be retried", message_id)
        return outcome.result


@unit_of_work
def sweep() -> str:
    """Everything due in the database and not done (run periodically by `ledgersync cron`).
    The automatic reminders due are handed to `catch_up` (sent as a bulk run's texts,
    off `high`); expiries beyond one batch too."""
    report = core_sweep.run(remind=False)
    for task in report.backlog:
        queues.catch_up_now(task)
    log.info("sweep: %s", report)
    return str(report)


CATCH_UP_SLICE = 15.0  # seconds a catch-up job works before the next slice takes over
BULK_SLICE = 15.0  # seconds a bulk job works before making way for reminders and expiries
MAX_SENDERS = 8  # threads of a worker process sending one bulk run's texts at once
SEND_TIME = 0.05  # seconds a text keeps its sender (checks, invite, the provider's answer)
STAFF_CHECK = 0.1  # seconds between two looks for staff's sends waiting (`high`, `paced`)


def senders_for(rate: float | None) -> int:
    """How many of a run's texts a worker sends at once: as many as the rate keeps busy
    while each waits for the provider (one at 20 texts a second or less, as before)."""
    return max(1, min(MAX_SENDERS, math.ceil((rate or 1.0) * SEND_TIME)))


@functools.cache
def _senders() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(MAX_SENDERS, thread_name_prefix="bulk-send")


def _send_one(run: BulkRun, wanted: list) -> bulk_sending.Step:
    with db.kept(), schedule.held(wanted):  # each sender thread keeps its own connection
        return bulk_sending.send_next(run.id, wait_turn=pacing.take_turn, run=run)


def _catch_up(wanted: list) -> None:
    """The slice's reminders and expiries: one job each at the latest of their times,
    not two jobs an invite (the sweep is the safety net, as for every schedule)."""
    try:
        for task, when in schedule.latest(wanted).items():
            queues.catch_up_at(task, when)
    except RedisError:
        log.warning("Redis refused a bulk run's catch-up; the sweep will do it", exc_info=True)


@unit_of_work
def bulk_send(run_id: int) -> str:
    """Work on a bulk run at the sender's pace, several texts at once (`senders_for`:
    each claimed by one conditional update, each in its own slot of the pace); hands
    over as soon as staff's sends wait (`high`, `paced`), else after BULK_SLICE, and
    wakes up for quiet-hours waits. Its invites' reminders and expiries are asked for
    once a slice."""
    make_way = _MakeWay(queues.queue("high"), queues.queue("paced"))
    width = senders_for(pacing.rate_for("sms"))
    sent, ended, running, wanted = 0, None, set(), []
    run = BulkRun.get_or_none(BulkRun.id == run_id)
    if run is None:
        return "stopped: no such run"
    while True:
        while ended is None and len(running) < width and not make_way():
            running.add(_senders().submit(_send_one, run, wanted))
        if not running:
            _catch_up(wanted)
            if ended is None:
                queues.queue("bulk").enqueue(bulk_send, run_id, job_timeout=600)
                return f"sliced after {sent}"
            return _ended(run_id, sent)
        done, running = wait(running, return_when=FIRST_COMPLETED)
        for step in (_counted(future.result()) for future in done):
            if step.result in {"stopped", "idle"}:
                ended = step
            sent += step.result == "sent"
        bulk_sending.report_progress(run_id)


def _counted(step: bulk_sending.Step) -> bulk_sending.Step:
    """A recipient worked (sent, failed, skipped), counted: `ledgersync_bulk_items_total`,
    whose rate beside SMS_RATE shows the pace a run goes at."""
    if step.item is not None and step.result in {"sent", "failed", "skipped"}:
        metrics.BULK_ITEMS.labels(step.item.channel, step.result).inc()
    return step


class _MakeWay:
    """Whether a bulk job should hand over now: its slice is used up, or staff's own
    sends wait (on `high`, or on `paced` at their slot) — asked of Redis at most every
    STAFF_CHECK seconds, not once a text."""

    def __init__(self, *first):
        self.first, self.started, self.asked, self.waiting = first, time.monotonic(), 0.0, False

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self.asked >= STAFF_CHECK:
            self.asked, self.waiting = now, any(queue.count for queue in self.first)
        return self.waiting or now - self.started > BULK_SLICE


def _ended(run_id: int, sent: int) -> str:
    """Nothing left to claim and nothing in this job's hands: the last word is a plain
    `send_next` (which marks the run done, or says when its next text is due)."""
    step = _counted(bulk_sending.send_next(run_id, wait_turn=pacing.take_turn))
    if step.result not in {"stopped", "idle"}:
        queues.queue("bulk").enqueue(bulk_send, run_id, job_timeout=600)
        return f"more after {sent + (step.result == 'sent')}"
    if step.until is not None:
        queues.schedule_bulk(run_id, step.until)
    bulk_sending.report_progress(run_id, final=True)
    return f"{step.result} after {sent}"
