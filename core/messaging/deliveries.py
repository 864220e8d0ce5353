"""Sending a message and what came of it.

`deliver` claims a pending message (`pending` → `sending`, a conditional update
only one caller wins), checks opt-outs once more, sends it through its channel's
sender (`outbound.sender_for`) and records the result: a failure tells the firm,
an address that can't take messages is remembered. `recover` settles a message
whose worker died mid-send.

Then receipts: the provider tells us what became of a message. They come late,
twice, or out of order; a message's status only ever moves forward (a `sent`
arriving after `delivered` changes nothing), with one conditional update, so two
receipts racing cannot move it back either. A receipt that beats the sender's own
record is kept (`EarlyReceipt`) and applied when the record lands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from peewee import JOIN

from core.platform import clock
from core.platform.db import Param, Prepared
from core.records import BulkItem, Channel, Client, EarlyReceipt, Invite, Kind, Message, Status

from . import notices, optouts, outbound
from .outbound import CLIENT_KINDS, OPTED_OUT, SendResult, TransientFailure

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
GIVE_UP = {Status.FAILED, Status.CANCELED}
# How far along a message is; receipts only ever move it forward.
RANK = {"pending": 0, "sending": 1, "accepted": 2, "scheduled": 2, "queued": 2, "sent": 3,
        "undelivered": 4, "failed": 4, "delivered": 5, "read": 6}
FAILED = {Status.UNDELIVERED, Status.FAILED}


WaitTurn = Callable[[str], object]

# The statements every delivery runs (see db.Prepared).
_CLAIM = Prepared(
    Message.update(status=Status.SENDING, attempts=Message.attempts + 1,
                   updated_at=Param("now", Message.updated_at))
    .where(Message.id == Param("id"), Message.status == Status.PENDING))
_WITH_INVITE = Prepared(  # the invite: for its link
    Message.select(Message, Invite).join(Invite, JOIN.LEFT_OUTER)
    .where(Message.id == Param("id")).limit(1))
_RECORD = Prepared(Message.update(
    status=Param("status", Message.status), provider=Param("provider", Message.provider),
    provider_id=Param("provider_id", Message.provider_id),
    error_code=Param("error_code", Message.error_code),
    error_message=Param("error_message", Message.error_message),
    sent_at=Param("sent_at", Message.sent_at), updated_at=Param("now", Message.updated_at),
).where(Message.id == Param("id")))
# What came of an invite's text, kept on the invite too (for the funnel): copied from the
# text as it stands when the invite is written — never a value this caller holds, which a
# receipt handled meanwhile may have moved on — so the last writer always copies the
# text's latest state.
_TEXT = Message.alias()


def _of_text(column):
    return (_TEXT.select(column).where((_TEXT.invite == Invite.id) & (_TEXT.kind == Kind.INVITE))
            .order_by(_TEXT.id.desc()).limit(1))


_COPIED = {Invite.delivery: _of_text(_TEXT.status),
           Invite.delivery_error: _of_text(_TEXT.error_message)}
_ON_INVITE = Prepared(Invite.update(_COPIED).where(Invite.id == Param("invite")))
_ON_INVITE_OF = Prepared(Invite.update(_COPIED).where(Invite.id.in_(
    Message.select(Message.invite).where((Message.provider_id == Param("provider_id"))
                                         & (Message.kind == Kind.INVITE)))))
_EARLY = Prepared(EarlyReceipt.select().where(EarlyReceipt.provider_id == Param("id")).limit(1))


def find(message_id: int) -> Message | None:
    """The message with its invite (for its link)."""
    return _WITH_INVITE.first(id=message_id)


def deliver(message_id: int, wait_turn: WaitTurn | None = None,
            message: Message | None = None) -> Message | None:
    """Send one pending message exactly once; safe to call any number of times.
    `wait_turn(channel)` waits for the sender's pace, right before the provider is
    called (so the time a text reaches the carrier is the time of its slot).
    `message`: as the caller has just read it (`find`), so it isn't read again.
    Another caller's message comes back as it is now."""
    message = message or find(message_id)
    if message is None or not claim(message):
        return find(message_id) if message is not None else None
    return send_claimed(message, wait_turn)


def claim(message: Message) -> bool:
    """Take a pending message for sending (`pending` → `sending`; only one caller
    can), in the caller's transaction: a bulk text is claimed as its invite is written.
    The caller then sends it with `send_claimed`."""
    now = clock.now()
    if not _CLAIM.run(id=message.id, now=now):
        return False
    message.status, message.attempts, message.updated_at = (Status.SENDING,
                                                            message.attempts + 1, now)
    return True


def send_claimed(message: Message, wait_turn: WaitTurn | None = None) -> Message:
    """Send a message this caller has claimed, and record what came of it."""
    if message.channel == Channel.SLACK:
        # A notice by direct message: its copies to the other admins were written
        # with this one (so they are committed too); they go out on their own.
        outbound.dispatch(*notices.others(message))
    refused = _refusal(message)
    if refused is not None:
        return finish(message, refused)
    try:
        sender = outbound.sender_for(message.channel)
        if wait_turn is not None:
            if hasattr(sender, "warm"):
                sender.warm()  # its first use is slow: not between the slot and the send
            wait_turn(message.channel)
        result = sender.send(message)
    except Exception as exc:
        _back_to_pending(message, f"{type(exc).__name__}")
        raise TransientFailure(str(exc)) from exc
    if result.retry:
        _back_to_pending(message, result.error_message or result.error_code or "temporary failure")
        raise TransientFailure(result.error_message or "temporary failure")
    return finish(message, result)


def _refusal(message: Message) -> SendResult | None:
    """Why the message must not go out after all, as its result; None: send it."""
    if message.channel != Channel.SLACK and optouts.is_opted_out(message.to_addr):
        return SendResult(Status.CANCELED, "none", error_message="opted out")
    if outbound.text_of(message) is None:
        return SendResult(Status.FAILED, "none", error_message=outbound.LINK_LOST)
    if message.attempts > MAX_ATTEMPTS:
        return SendResult(Status.FAILED, "none", error_message=(
            f"gave up after {MAX_ATTEMPTS} tries ({message.error_message or 'no answer'})"))
    return None


def deliver_now(message_ids: list[int], wait_turn: WaitTurn | None = None) -> None:
    """The dispatcher without a job queue: deliver in this process, at once (at
    the sender's pace, with `wait_turn`)."""
    for message_id in message_ids:
        try:
            deliver(message_id, wait_turn)
        except TransientFailure:
            log.warning("message %s: delivery will be retried", message_id)


def wait_for_slot(message_id: int, slot: datetime) -> bool:
    """A pending message waits for the slot reserved for it: nothing (the sweep
    included) sends it before, and nobody reserves it another; True if it still waits."""
    return bool(Message.update(not_before=slot).where(
        Message.id == message_id, Message.status == Status.PENDING).execute())


def slot_of(message: Message) -> datetime | None:
    """The slot already reserved for the message, if it is still ahead."""
    if message.not_before is not None and message.not_before > clock.now():
        return message.not_before
    return None


def _back_to_pending(message: Message, why: str) -> None:
    Message.update(status=Status.PENDING, error_message=why[:300], updated_at=clock.now()).where(
        Message.id == message.id, Message.status == Status.SENDING
    ).execute()


def recover(message_id: int) -> Message | None:
    """A message stuck in `sending` (its worker died mid-send): ask the provider
    whether it went out; record that, or make it `pending` again to be re-sent."""
    message = Message.get_or_none(Message.id == message_id, Message.status == Status.SENDING)
    if message is None:
        return None
    sender = outbound.sender_for(message.channel)
    found = sender.find_sent(message) if hasattr(sender, "find_sent") else None
    if found is not None:
        return finish(message, found)
    _back_to_pending(message, "interrupted while sending")
    return message.refreshed()


def finish(message: Message, result: SendResult) -> Message:
    """Record what the sender said; tell the firm of a failure."""
    now = clock.now()
    message.status = result.status
    message.provider = result.provider
    message.provider_id = result.provider_id
    message.error_code = result.error_code
    message.error_message = (result.error_message or "")[:300] or None
    message.sent_at = now if result.status not in GIVE_UP else None
    message.updated_at = now
    _RECORD.run(id=message.id, status=message.status, provider=message.provider,
                provider_id=message.provider_id, error_code=message.error_code,
                error_message=message.error_message, sent_at=message.sent_at, now=now)
    if message.kind == Kind.INVITE and message.invite_id is not None:
        _ON_INVITE.run(invite=message.invite_id)
    if message.provider_id:
        apply_early(message)
    if result.address_problem:
        address_problem(message, result.address_problem)
    if result.status in FAILED and message.kind in CLIENT_KINDS:
        outbound.dispatch(notices.delivery_failed(message))
    return message


def address_problem(message: Message, problem: str) -> None:
    """The provider says the address can't take messages: remember it, so nothing
    more is tried (an opt-out) or staff see why and fix the number."""
    client = message.client
    if problem == OPTED_OUT:
        optouts.opt_out(message.to_addr, f"{message.provider or 'provider'} refused",
                        firm=message.firm_id, client=client)
    elif client is not None and message.channel == Channel.SMS and client.phone == message.to_addr:
        Client.update(phone_problem=problem[:200], updated_at=clock.now()).where(
            Client.id == client.id).execute()


# --- receipts ---------------------------------------------------------------------------



def record(provider_id: str, status: str, *, error_code: str | None = None,
           reason: str | None = None, address_problem: str | None = None) -> bool:
    """Apply one receipt; True when it moved the message forward."""
    status = status.lower()
    if status not in RANK:
        return False
    behind = [name for name, rank in RANK.items() if rank < RANK[status]]
    changes = {"status": status, "updated_at": clock.now()}
    if status in FAILED:
        changes.update(error_code=(error_code or "")[:16] or None,
                       error_message=(reason or "the carrier gave no reason")[:300])
    moved = (Message.update(**changes)
             .where(Message.provider_id == provider_id, Message.status.in_(behind)).execute())
    if moved:
        _ON_INVITE_OF.run(provider_id=provider_id)  # (an invite's text: its invite too)
    if moved and status in FAILED:
        _failed(Message.get(Message.provider_id == provider_id), address_problem)
    if not moved and not Message.select().where(Message.provider_id == provider_id).exists():
        _keep_early(provider_id, status, error_code, reason, address_problem)
    return bool(moved)


def _keep_early(provider_id, status, error_code, reason, address_problem) -> None:
    row = EarlyReceipt.get_or_none(EarlyReceipt.provider_id == provider_id)
    if row is not None and RANK[row.status] >= RANK[status]:
        return
    fields = [EarlyReceipt.status, EarlyReceipt.error_code, EarlyReceipt.reason,
              EarlyReceipt.address_problem, EarlyReceipt.at]
    EarlyReceipt.insert(provider_id=provider_id[:64], status=status, error_code=error_code,
                        reason=reason, address_problem=address_problem, at=clock.now()) \
        .on_conflict(conflict_target=[EarlyReceipt.provider_id], preserve=fields).execute()


def apply_early(message: Message) -> None:
    """Called once a message has its provider id: a receipt that beat it counts now."""
    early = _EARLY.first(id=message.provider_id)
    if early is None:
        return
    EarlyReceipt.delete().where(EarlyReceipt.provider_id == early.provider_id).execute()
    record(early.provider_id, early.status, error_code=early.error_code, reason=early.reason,
           address_problem=early.address_problem)


def _failed(message: Message, problem: str | None) -> None:
    if message.invite_id is not None and message.kind == Kind.INVITE:
        # A bulk run's text that never arrived counts as failed there (Retry failed).
        BulkItem.update(outcome="failed", reason=message.error_message).where(
            BulkItem.invite == message.invite_id, BulkItem.outcome == "sent").execute()
    if problem:
        address_problem(message, problem)
    if message.kind in CLIENT_KINDS:
        outbound.dispatch(notices.delivery_failed(message))
