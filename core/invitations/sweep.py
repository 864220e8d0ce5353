"""The periodic sweep: whatever is due in the database and was not done, do it.

Scheduled jobs normally do the work at the exact time; the sweep is the safety
net for a Redis that lost its data, a scheduler that died, a worker killed
mid-send. Every query it runs is on a partial index of what is *due* (see
`core.records`), so its cost follows the number of due items, not all invites.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.messaging import deliveries, outbound
from core.platform import clock
from core.records import Invite, Message, Status

from . import bulk_sending, invites, reminders, schedule

BATCH = 500


@dataclass
class Report:
    reminders: int = 0
    expired: int = 0
    redispatched: int = 0
    recovered: int = 0
    bulk_runs: int = 0
    backlog: tuple[str, ...] = ()  # `remind`, `expire`: a whole batch was due (more may be)

    def __str__(self):
        return (f"{self.reminders} reminders, {self.expired} expiries, "
                f"{self.redispatched} re-dispatched, {self.recovered} recovered")


def run(now: datetime | None = None, *, pending_grace: timedelta = timedelta(minutes=10),
        stuck_after: timedelta = timedelta(minutes=10), batch: int | None = None,
        remind: bool = True) -> Report:
    """`remind=False`: the reminders due are not sent here, only reported as a backlog
    (a worker sends them as a bulk run's texts: `jobs.tasks.catch_up`)."""
    now, batch = now or clock.now(), batch or BATCH
    report = Report()
    due_reminders = due_ids(reminders.due(now), batch if remind else 1)
    for invite_id in due_reminders if remind else ():
        if reminders.send_automatic(invite_id, now).result == "sent":
            report.reminders += 1
    due_expiries = due_ids(invites.expiry_due(now), batch)
    for invite_id in due_expiries:
        report.expired += invites.expire(invite_id, now)
    report.backlog = tuple(task for task, due, full in (
        ("remind", due_reminders, batch if remind else 1), ("expire", due_expiries, batch))
        if due and len(due) == full)
    for message in _undelivered(Status.SENDING, now - stuck_after, batch):
        recovered = deliveries.recover(message.id)
        if recovered is not None:
            report.recovered += 1
            if recovered.status == Status.PENDING:
                outbound.dispatch(recovered)
    for run_id in bulk_sending.recover(now - stuck_after):
        bulk_sending.kick(run_id)
        report.bulk_runs += 1
    lost = list(_undelivered(Status.PENDING, now - pending_grace, batch))
    outbound.dispatch(*lost)
    report.redispatched = len(lost)
    return report


@dataclass(frozen=True)
class CaughtUp:
    done: int  # reminders sent, or expiries recorded
    more: bool  # stopped at `until` with more due: the caller asks for another slice


def catch_up(task: str, now: datetime | None = None, batch: int | None = None,
             until: float | None = None) -> CaughtUp:
    """Every automatic reminder (`remind`) or expiry (`expire`) due now, batch after
    batch: what a bulk run asks for instead of a job an invite (`schedule.held`), and
    what the sweep hands a backlog to. Each one handled leaves the due set (sent,
    settled, deferred or recorded); a batch of only ones seen before ends it (the
    sweep tries them again). `until` (a `time.monotonic()`): stop after the batch that
    passes it, saying there is more — a worker works in slices, never for long."""
    now, batch = now or clock.now(), batch or BATCH
    done, seen = 0, set()
    while True:
        query = reminders.due(now) if task == "remind" else invites.expiry_due(now)
        ids = due_ids(query, batch)
        done += sum(_settle_due(task, invite_id, now) for invite_id in ids if invite_id not in seen)
        if len(ids) < batch or seen.issuperset(ids):
            return CaughtUp(done, more=False)
        seen.update(ids)
        if until is not None and time.monotonic() >= until:
            return CaughtUp(done, more=True)


def _settle_due(task: str, invite_id: int, now: datetime) -> bool:
    if task == "expire":
        return invites.expire(invite_id, now)
    outcome = reminders.send_automatic(invite_id, now)
    if outcome.retry_at is not None:  # quiet hours: come back in the client's morning
        schedule.at("remind", invite_id, outcome.retry_at)
    return outcome.result == "sent"


def due_ids(query, batch: int = BATCH) -> list[int]:
    return [row[0] for row in query.select(Invite.id).limit(batch).tuples()]


def _undelivered(status: str, before: datetime, batch: int):
    """Messages left in `status` since before `before` (the `message_undelivered` index)."""
    return (Message.select(Message.id)
            .where(Message.status.in_([Status.PENDING, Status.SENDING]), Message.status == status,
                   Message.created_at <= before, Message.updated_at <= before,
                   Message.not_before.is_null() | (Message.not_before <= before))
            .order_by(Message.created_at).limit(batch))
