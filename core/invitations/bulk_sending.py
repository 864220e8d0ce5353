"""A bulk run's sending: confirm (once, however often it is clicked), then item by
item at the sender's pace (`send_next`), cancel, retry what failed, recover what a
dead worker held.

Each item is claimed with a conditional update, and its invite is written in the
same transaction, so a double click, a restarted worker or a flushed Redis never
texts a client twice. Who works on a run is the `bulk_runner` port (bulk jobs, or
this process); who shows its progress, the `bulk_progress` port.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime

from peewee import JOIN, fn

from core import ports
from core.messaging import deliveries, outbound
from core.messaging.quiet_hours import next_allowed, zone_for
from core.platform import clock
from core.platform.db import Param, Prepared, database, is_sqlite
from core.platform.errors import LedgerSyncError
from core.records import (
    OPEN_INVITE,
    BulkItem,
    BulkRun,
    Client,
    ClientAccount,
    Firm,
    Invite,
    Message,
    OptOut,
    events,
)

from . import invites
from .bulk_plan import UNCHECKED, why_not

log = logging.getLogger(__name__)




def _standing(item: BulkItem, retrying: bool) -> tuple[bool, bool, bool]:
    """What `_CLAIMED` read with the item: opted out (the channel's address)? accepted?
    a valid invite still pending (not asked when retrying)?"""
    opted = item.opted_sms if item.channel == "sms" else item.opted_email
    return bool(opted), bool(item.accepted), bool(item.pending) and not retrying


def confirm(run_id: int) -> bool:
    """Start the run; True for exactly one of any number of clicks."""
    started = (BulkRun.update(status="running", started_at=clock.now())
               .where(BulkRun.id == run_id, BulkRun.status == "confirming").execute())
    if started:
        run = BulkRun.get_by_id(run_id)
        events.record("bulk.started", firm=run.firm_id, run=run_id,
                      actor=events.actor_of(run.started_by))
    return bool(started)


def cancel(run_id: int, actor: str = "system") -> int:
    """What has not gone out is not sent; what went out stays recorded."""
    with database.atomic():
        BulkRun.update(status="canceled", canceled_at=clock.now()).where(
            BulkRun.id == run_id, BulkRun.status.in_(["confirming", "running"])).execute()
        stopped = (BulkItem.update(outcome="canceled", reason="canceled", updated_at=clock.now())
                   .where(BulkItem.run == run_id, BulkItem.outcome.in_(["queued", "waiting"]))
                   .execute())
    events.record("bulk.canceled", firm=BulkRun.get_by_id(run_id).firm_id, actor=actor,
                  run=run_id, items=stopped)
    return stopped


def retry_failed(run_id: int) -> int:
    with database.atomic():
        again = (BulkItem.update(outcome="queued", reason=None, updated_at=clock.now())
                 .where(BulkItem.run == run_id, BulkItem.outcome == "failed").execute())
        if again:
            BulkRun.update(status="running", finished_at=None).where(BulkRun.id == run_id).execute()
    return again


@dataclass(frozen=True)
class Step:
    result: str  # sent | failed | skipped | waiting | idle | stopped
    item: BulkItem | None = None
    until: datetime | None = None


def send_next(run_id: int, wait_turn=None, run: BulkRun | None = None) -> Step:
    """Send the run's next due item. `wait_turn(channel)` waits for the sender's pace.
    (`run`: the run as read at the start of a worker's slice — a cancel that lands
    since is still obeyed: it takes the items, so none can be claimed.)"""
    run = run or BulkRun.get_or_none(BulkRun.id == run_id)
    if run is None or run.status != "running":
        return Step("stopped")
    now = clock.now()
    item = _claim_next(run_id, now)
    if item is None:
        return _idle(run, now)
    client = item.client
    retrying = item.invite_id is not None  # "Retry failed": its first text never arrived
    problem = (why_not(client, item.channel, run.purpose, _standing(item, retrying)) if client
               else "client deleted")
    if problem:
        return _settle(item, "skipped", problem)
    if item.channel == "sms":
        allowed = next_allowed(now, zone_for(client))
        if allowed > now:
            _set(item, "waiting", "quiet hours: waits for their morning", not_before=allowed)
            return Step("waiting", item, allowed)
    return _send(run, item, wait_turn)


def _claim_next(run_id: int, now: datetime) -> BulkItem | None:
    """Claim the run's next due item, in order, with one conditional update: it is
    this caller's alone (on PostgreSQL a claimer skips the row another is claiming at
    that moment, `SKIP LOCKED`; on SQLite writers take turns). None when none is due."""
    claimed = _claim(is_sqlite()).rows(run=run_id, now=now)
    return _CLAIMED.first(id=claimed[0].id, now=now) if claimed else None


def _due(now):
    return (BulkItem.outcome == "queued") | ((BulkItem.outcome == "waiting")
                                             & (BulkItem.not_before <= now))


# The statements every bulk text runs (see db.Prepared).
@functools.cache
def _claim(sqlite: bool) -> Prepared:
    first_due = (BulkItem.select(BulkItem.id).where(BulkItem.run == Param("run"),
                                                    _due(Param("now")))
                 .order_by(BulkItem.id).limit(1))
    if not sqlite:
        first_due = first_due.for_update("FOR UPDATE SKIP LOCKED")
    return Prepared(BulkItem.update(outcome="sending",
                                    updated_at=Param("now", BulkItem.updated_at))
                    .where(BulkItem.id == first_due).returning(BulkItem.id))


def _claimed() -> Prepared:
    """The claimed item with its client and firm, and in the same query whatever its
    text depends on: opt-outs, an account, open invites still valid or past expiry."""
    now = Param("now")
    open_invites = Invite.select().where(Invite.client == Client.id, OPEN_INVITE,
                                         Invite.expired_at.is_null())
    return Prepared(
        BulkItem.select(BulkItem, Client, Firm,
                        _opted(Client.phone).alias("opted_sms"),
                        _opted(Client.email).alias("opted_email"),
                        fn.EXISTS(ClientAccount.select().where(ClientAccount.client == Client.id))
                        .alias("accepted"),
                        fn.EXISTS(open_invites.where(Invite.expires_at > now)).alias("pending"),
                        fn.EXISTS(open_invites.where(Invite.expires_at <= now)).alias("overdue"))
        .join(Client, JOIN.LEFT_OUTER).join(Firm, JOIN.LEFT_OUTER)
        .where(BulkItem.id == Param("id")).limit(1))


def _opted(address):
    return fn.EXISTS(OptOut.select().where(OptOut.address == address,
                                           OptOut.opted_out == True))  # noqa: E712


_CLAIMED = _claimed()


_SENT = Prepared(BulkItem.update(outcome="sent", reason=None,
                                 updated_at=Param("now", BulkItem.updated_at),
                                 invite=Param("invite", BulkItem.invite))
                 .where(BulkItem.id == Param("id")))


def _send(run: BulkRun, item: BulkItem, wait_turn=None) -> Step:
    held: list[int] = []
    try:
        with outbound.held(held), database.atomic():
            if item.invite_id is not None and invites.open_invite(item.client) is not None:
                sent = invites.resend(item.client, item.channel, purpose=run.purpose,
                                      by=run.started_by, cooldown=False)
            elif invites.unchecked(item.client, item.channel):
                return _settle(item, "skipped", UNCHECKED)
            else:  # checked just now (`why_not`), and written in this transaction
                sent = invites.send_checked(item.client, item.channel, purpose=run.purpose,
                                            by=run.started_by, overdue=bool(item.overdue))
            _SENT.run(id=item.id, invite=sent.invite.id, now=clock.now())
            mine = sent.message if deliveries.claim(sent.message) else None
    except LedgerSyncError as problem:
        return _settle(item, "skipped", str(problem))
    message = _deliver(held, wait_turn, mine) or sent.message
    if message.status in {"failed", "canceled"}:
        return _settle(item, "failed", message.error_message or "not delivered")
    return Step("sent", item)


def _deliver(held: list[int], wait_turn, mine: Message | None) -> Message | None:
    """Send what the item's invite wrote, at the sender's pace (taken right before the
    provider is called) — its text claimed already (`mine`), as it was written; the
    invite's message as it ends up (still pending when the provider asked to try
    again later: the sweep sends it then)."""
    delivered = None
    for message_id in held:
        try:
            message = (deliveries.send_claimed(mine, wait_turn)
                       if mine is not None and message_id == mine.id
                       else deliveries.deliver(message_id, wait_turn))
        except deliveries.TransientFailure:
            log.warning("message %s: delivery will be retried", message_id)
            continue
        if message is not None and message.kind == "invite":
            delivered = message
    return delivered


def _settle(item: BulkItem, outcome: str, reason: str | None) -> Step:
    _set(item, outcome, reason)
    return Step(outcome, item)


def _set(item: BulkItem, outcome: str, reason: str | None, **extra) -> None:
    BulkItem.update(outcome=outcome, reason=(reason or "")[:300] or None,
                    updated_at=clock.now(), **extra).where(BulkItem.id == item.id).execute()


def _idle(run: BulkRun, now: datetime) -> Step:
    waiting = (BulkItem.select(BulkItem.not_before)
               .where(BulkItem.run == run.id, BulkItem.outcome.in_(["waiting", "sending"]))
               .order_by(BulkItem.not_before).first())
    if waiting is None:
        done = (BulkRun.update(status="done", finished_at=now)
                .where(BulkRun.id == run.id, BulkRun.status == "running").execute())
        if done:
            events.record("bulk.finished", firm=run.firm_id, run=run.id)
        return Step("idle")
    return Step("idle", until=waiting.not_before)


def report_progress(run_id: int, final: bool = False) -> None:
    """The run's progress, to whoever shows it (the `bulk_progress` port)."""
    show = ports.current().bulk_progress
    if show is not None:
        show(run_id, final)


def start(run_id: int) -> bool:
    """Confirm and hand the run to the workers."""
    started = confirm(run_id)
    if started:
        kick(run_id)
    return started


def kick(run_id: int) -> None:
    """Work on the run: the `bulk_runner` port (bulk jobs), or here and now."""
    runner = ports.current().bulk_runner
    if runner is not None:
        runner(run_id)
    else:
        while send_next(run_id).result not in {"idle", "stopped"}:
            pass


def recover(before: datetime) -> list[int]:
    """Items claimed by a worker that died before sending go back in the queue;
    returns the running runs with work due, for the sweep to hand out again."""
    # An item becomes `sent` in the transaction that writes its invite, so one still
    # `sending` sent nothing.
    BulkItem.update(outcome="queued").where(
        BulkItem.outcome == "sending", BulkItem.updated_at <= before).execute()
    due = (BulkItem.select(BulkItem.run).join(BulkRun)
           .where(BulkRun.status == "running", BulkItem.updated_at <= before,
                  (BulkItem.outcome == "queued")
                  | ((BulkItem.outcome == "waiting") & (BulkItem.not_before <= clock.now())))
           .distinct())
    return [row.run_id for row in due]
