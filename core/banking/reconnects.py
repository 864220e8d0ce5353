"""Asking a client to reconnect: by staff (the status card's *Ask to reconnect*), or by
itself when a connection breaks and the firm turned `auto_reconnect_invites` on.

The automatic invite goes once a break: the break (`connections.mark_broken`) clears
`auto_invited_at`, and a conditional update sets it for exactly one caller, however
often the provider says so. Every rule of a single invite applies (an opted-out
number, no address, an invite already open…: not sent, and the event says why); by
SMS it waits for the client's morning, as automatic texts do (`QUIET_HOURS`). A
scheduled job sends it then (the `reconnect_scheduler` port), and the bank sweep catches one whose
job was lost.
"""

from __future__ import annotations

from datetime import datetime

from core import ports
from core.invitations import invites
from core.messaging.quiet_hours import next_allowed, zone_for
from core.platform import clock
from core.platform.errors import LedgerSyncError, Refused
from core.records import BankConnection, Client, Firm, Staff, events


def ask(client: Client, *, by: Staff | None = None) -> invites.Sent:
    """A reconnect invite on the client's usual channel: a new one, or, with a link
    still open, a new link in its place."""
    latest = invites.latest(client)
    channel = latest.channel if latest else None
    current = invites.open_invite(client)
    if current is None:
        return invites.send(client, channel, purpose="reconnect", by=by)
    if by is None and current.purpose == "reconnect":
        raise Refused("a reconnect link is already open")
    return invites.resend(client, channel, purpose="reconnect", by=by, cooldown=by is not None)


def set_automatic(firm: Firm, on: bool, *, actor: str = "system") -> None:
    Firm.update(auto_reconnect_invites=on).where(Firm.id == firm.id).execute()
    events.record("firm.auto_reconnect", firm=firm, actor=actor, on=on)


def after_break(connection: BankConnection) -> str:
    """A connection just broke: its automatic invite, now or in the client's morning
    (when the firm wants them). What happened, in a word."""
    client = connection.client
    if not client.firm.auto_reconnect_invites:
        return "off"
    due = _due_at(client)
    BankConnection.update(auto_invite_due_at=due).where(
        BankConnection.id == connection.id, BankConnection.auto_invited_at.is_null()).execute()
    if due > clock.now():
        later = ports.current().reconnect_scheduler
        if later is not None:
            later(connection.id, due)
        return "waiting for the morning"
    return send_due(connection.id)


def _due_at(client: Client) -> datetime:
    now = clock.now()
    latest = invites.latest(client)
    by_sms = (latest.channel if latest else ("sms" if client.phone else "email")) == "sms"
    return next_allowed(now, zone_for(client)) if by_sms else now


def send_due(connection_id: int) -> str:
    """The automatic invite of this break, if it is due and nobody sent it yet."""
    now = clock.now()
    claimed = BankConnection.update(auto_invited_at=now).where(
        BankConnection.id == connection_id, BankConnection.status == "needs_reconnect",
        BankConnection.auto_invited_at.is_null(), BankConnection.auto_invite_due_at <= now,
    ).execute()
    if not claimed:
        return "not due, or already done"
    connection = BankConnection.get_by_id(connection_id)
    client = connection.client
    try:
        sent = ask(client)
    except LedgerSyncError as problem:
        events.record("connection.auto_invite_skipped", client=client,
                      bank=connection.institution_name, reason=str(problem))
        return f"not sent: {problem}"
    events.record("connection.auto_invited", client=client, invite=sent.invite,
                  bank=connection.institution_name, channel=sent.invite.channel)
    return "sent"


def due() -> list[int]:
    """Automatic invites due and not sent (their scheduled job lost: Redis flushed)."""
    rows = BankConnection.select(BankConnection.id).where(
        BankConnection.status == "needs_reconnect", BankConnection.auto_invited_at.is_null(),
        BankConnection.auto_invite_due_at <= clock.now())
    return [row.id for row in rows]
