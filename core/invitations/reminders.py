"""The automatic reminder: decided here, and only here.

An invite's reminder is due at `reminder_due_at` (sent_at + REMINDER_AFTER, day 3
by default) while the invite is open. Exactly one goes out per invite: the
conditional update on `reminded_at` below returns 1 for exactly one caller, and
the message is written in the same transaction, whatever races it (a job run
twice, two workers, the sweep). An SMS due in the client's quiet hours waits for
their morning, but never goes out once the link has expired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from peewee import IntegrityError

from core.messaging import optouts, outbound
from core.messaging.quiet_hours import next_allowed, zone_for
from core.platform import clock, tokens
from core.platform.db import Param, Prepared, database
from core.platform.errors import Refused
from core.records import OPEN_INVITE, Client, Firm, Invite, Message, events

from . import invites


@dataclass(frozen=True)
class Outcome:
    result: str  # sent | deferred | skipped | not_due | done
    reason: str = ""
    retry_at: datetime | None = None
    message: Message | None = None


def due(now: datetime | None = None):
    """Open invites whose automatic reminder is due and not yet decided (indexed:
    `invite_reminder_due`, so the cost follows the number due, not all invites)."""
    now = now or clock.now()
    return Invite.select().where(
        OPEN_INVITE,
        Invite.reminded_at.is_null(),
        Invite.reminder_due_at <= now,
    ).order_by(Invite.reminder_due_at)


def send_automatic(invite_id: int, now: datetime | None = None) -> Outcome:
    now = now or clock.now()
    invite = _INVITE.first(id=invite_id)
    if invite is None:
        return Outcome("skipped", "no such invite")
    if invite.reminded_at is not None:
        return Outcome("done", "already decided")
    if now < invite.reminder_due_at:
        return Outcome("not_due", retry_at=invite.reminder_due_at)
    state = invite.status(now)
    if state != "pending":
        return _close(invite, now, f"invite {state}")
    if invite.channel == "sms":
        allowed = next_allowed(now, zone_for(invite.client))
        if allowed > now:
            if allowed >= invite.expires_at:
                return _close(invite, now, "quiet hours last until the link expires")
            return _defer(invite, allowed)
    return _send(invite, now)


def _send(invite: Invite, now: datetime) -> Outcome:
    client = invite.client
    try:
        address = invites.address_for(client, invite.channel)
    except Refused as problem:
        return _close(invite, now, str(problem))
    if optouts.is_opted_out(address):
        return _close(invite, now, "opted out")
    token = tokens.unseal(invite.token_sealed)
    if token is None:
        return _close(invite, now, "link keys changed")
    try:
        with database.atomic():
            if not _claim(invite.id, now):
                return Outcome("done", "another worker sent it")
            message = invites._queue(invite, "auto_reminder", token)
            events.record("invite.reminded", client=client, invite=invite, automatic=True)
    except IntegrityError:
        return Outcome("done", "already queued")
    outbound.dispatch(message)
    return Outcome("sent", message=message)


def _claim(invite_id: int, now: datetime) -> bool:
    """The exactly-once decision: one caller sets `reminded_at`."""
    return bool(_CLAIM.run(id=invite_id, now=now))


# The statements every reminder runs (see db.Prepared).
_INVITE = Prepared(Invite.select(Invite, Client, Firm).join(Client).join(Firm)
                   .where(Invite.id == Param("id")).limit(1))  # with whom it is for
_CLAIM = Prepared(Invite.update(reminded_at=Param("now", Invite.reminded_at)).where(
    Invite.id == Param("id"), Invite.reminded_at.is_null(), OPEN_INVITE,
    Invite.expired_at.is_null(), Invite.expires_at > Param("now")))


def _defer(invite: Invite, until: datetime) -> Outcome:
    """Quiet hours: the reminder becomes due in the client's morning."""
    Invite.update(reminder_due_at=until).where(
        Invite.id == invite.id, Invite.reminded_at.is_null()
    ).execute()
    return Outcome("deferred", "quiet hours", retry_at=until)


def _close(invite: Invite, now: datetime, reason: str) -> Outcome:
    """No automatic reminder for this invite, ever: `reminded_at` records that the
    question is settled, so the sweep stops looking; the event says why."""
    settled = (
        Invite.update(reminded_at=now)
        .where(Invite.id == invite.id, Invite.reminded_at.is_null())
        .execute()
    )
    if settled:
        events.record("reminder.skipped", client=invite.client_id, firm=invite.firm_id,
                      invite=invite, reason=reason)
    return Outcome("skipped", reason)
