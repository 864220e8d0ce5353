"""The jobs. Each loads its state from the database by id, calls core, and is
idempotent: running it twice, or after the work was done elsewhere, changes
nothing. Workers run them with a database connection per job."""

from __future__ import annotations

import functools
import logging
import time
from datetime import UTC, datetime

from rq import get_current_job

from core import bulk, clock, db, deliveries, invites, reminders, schedule
from core import sweep as core_sweep
from core.models import Invite, Message, Status

from . import pacing, queues

log = logging.getLogger(__name__)


def unit_of_work(func):
    @functools.wraps(func)
    def run(*args, **kwargs):
        with db.connection():
            return func(*args, **kwargs)

    return run


HOLD = 1.0  # a worker waits in place for a slot this near; later ones are scheduled
LATE_OK = 1.0  # a slot missed by more (the workers were busy) is given up for a new one


@unit_of_work
def deliver(message_id: int, slot: float | None = None) -> str:
    """Send one message (client SMS/email or firm notice) in its slot of the
    sender's pace. A slot more than a second away is kept, and the job comes back
    for it (RQ's scheduler), so a backlog of texts never holds a worker that staff's
    answers are waiting for. A transient failure raises, and RQ retries with
    backoff (reserving a new slot); a permanent one is recorded, and the firm is told.
    A slot missed by more than LATE_OK while the workers were busy is given up for
    the next free one: under overload a text slips rather than bunch."""
    message = Message.get_or_none(Message.id == message_id)
    if message is None or message.status != Status.PENDING:
        return message.status if message else "missing"
    slot = _slot(message, slot)
    if slot is not None and slot - time.time() > HOLD:  # (the scheduler may be early: again)
        if deliveries.wait_for_slot(message_id, datetime.fromtimestamp(slot, UTC)):
            queues.deliver_at(message_id, slot, lead=HOLD)
        return "waiting for its slot"
    message = deliveries.deliver(message_id, wait_turn=lambda _channel: pacing.until(slot))
    return message.status if message else "missing"


def _slot(message: Message, given: float | None) -> float | None:
    """The slot to send in: the one this job carries, else the one the message
    already holds (a second job for it — the sweep's, a duplicate — reserves no
    other), else a new one. A retry after a refusal always takes a new one."""
    if _retrying():
        return pacing.reserve(queues.connection(), message.channel)
    if given is not None and time.time() - given <= LATE_OK:
        return given
    held = deliveries.slot_of(message)
    if held is not None:
        return held.timestamp()
    return pacing.reserve(queues.connection(), message.channel)


def _retrying() -> bool:
    """This run is RQ retrying a failed one: the provider wants us to slow down, so
    the old slot is not reused."""
    job = get_current_job()
    return job is not None and job.retries_left is not None and \
        job.retries_left < queues.DELIVERY_RETRY.max


def take_turn(channel: str) -> None:
    """Wait for this channel's next slot (the sender's rate, across all workers)."""
    paced = pacing.pace(queues.connection(), channel)
    if paced is not None:
        paced.wait_turn()


@unit_of_work
def remind(invite_id: int) -> str:
    """The automatic reminder, when due (see core.reminders)."""
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
def sweep() -> str:
    """Everything due in the database and not done (run periodically by `ledgersync cron`)."""
    report = core_sweep.run()
    log.info("sweep: %s", report)
    return str(report)


BULK_SLICE = 5.0  # seconds a bulk job works before making way for staff's own sends


@unit_of_work
def bulk_send(run_id: int) -> str:
    """Work on a bulk run at the sender's pace; hands over to waiting staff sends
    (the `high` queue) every few seconds, and wakes up for quiet-hours waits."""
    started, sent = time.monotonic(), 0
    high = queues.queue("high")
    while True:
        step = bulk.send_next(run_id, wait_turn=take_turn)
        if step.result in {"stopped", "idle"}:
            if step.until is not None:
                queues.schedule_bulk(run_id, step.until)
            bulk.report_progress(run_id, final=True)
            return f"{step.result} after {sent}"
        sent += step.result == "sent"
        bulk.report_progress(run_id)
        if time.monotonic() - started > BULK_SLICE or high.count:
            queues.queue("bulk").enqueue(bulk_send, run_id, job_timeout=600)
            return f"sliced after {sent}"
