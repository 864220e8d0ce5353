"""Delivery receipts: the provider tells us what became of a message we sent.

Receipts come late, twice, or out of order; a message's status only ever moves
forward (a `sent` arriving after `delivered` changes nothing), with one
conditional update, so two receipts racing cannot move it back either.
"""

from __future__ import annotations

from . import clock, notices, outbound
from .models import BulkItem, EarlyReceipt, Message

RANK = {"pending": 0, "sending": 1, "accepted": 2, "scheduled": 2, "queued": 2, "sent": 3,
        "undelivered": 4, "failed": 4, "delivered": 5, "read": 6}
FAILED = {"undelivered", "failed"}


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
    early = EarlyReceipt.get_or_none(EarlyReceipt.provider_id == message.provider_id)
    if early is None:
        return
    EarlyReceipt.delete().where(EarlyReceipt.provider_id == early.provider_id).execute()
    record(early.provider_id, early.status, error_code=early.error_code, reason=early.reason,
           address_problem=early.address_problem)


def _failed(message: Message, address_problem: str | None) -> None:
    if message.invite_id is not None and message.kind == "invite":
        # A bulk run's text that never arrived counts as failed there (Retry failed).
        BulkItem.update(outcome="failed", reason=message.error_message).where(
            BulkItem.invite == message.invite_id, BulkItem.outcome == "sent").execute()
    if address_problem:
        outbound.address_problem(message, address_problem)
    if message.kind in outbound.CLIENT_KINDS:
        outbound.dispatch(notices.delivery_failed(message))
