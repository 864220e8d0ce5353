"""Notices to a firm: an invite expired, a delivery failed…

They go through the same outbound port as client messages (channel `slack`), so
they are exactly-once too (one `dedupe_key` per notice) and, with no Slack set
up, land in the local outbox.

Where they go: the firm's chosen channel. Until an admin chooses one, each admin
connected to Slack gets them by direct message: one message per admin, all
written in the caller's transaction. The first holds the notice's own key (so
the notice is still written once, whoever the admins are by then); the others
add `/dm/<Slack user>` to it. Each is claimed and sent on its own, so a retry
never repeats a DM already sent. The caller dispatches the first after its
transaction commits, as for any message; `deliveries.deliver` dispatches the
others (`others`) when it claims the first: they were committed with it. With
nobody to tell, the notice is recorded as canceled with the reason.
"""

from __future__ import annotations

from core.platform import clock
from core.platform.config import settings
from core.platform.db import database
from core.records import Channel, Firm, Message, Staff, Status

from . import outbound
from .quiet_hours import zone_for
from .templates import Rendered

NO_CHANNEL = "(no channel chosen)"
NOBODY_TOLD = ("no channel chosen and no admin connected to Slack: "
               "choose one with /ledgersync notify #channel")
DM = "/dm/"


def write(firm: Firm | int, kind: str, text: str, *, client=None, invite=None,
          dedupe_key: str) -> Message | None:
    """Write the notice, to each of its recipients; the message to dispatch (the
    first: delivering it dispatches the others), or None when it was written before."""
    firm = firm if isinstance(firm, Firm) else Firm.get_by_id(firm)
    first, *more = recipients(firm)

    def one(to_addr: str, key: str) -> Message | None:
        return outbound.write(firm=firm, channel=Channel.SLACK, kind=f"notice_{kind}",
                              to_addr=to_addr, rendered=Rendered(body=text), client=client,
                              invite=invite, dedupe_key=key)

    with database.atomic():
        message = one(first, dedupe_key)
        if message is not None:
            for user in more:
                one(user, f"{dedupe_key}{DM}{user}")
    return message


def recipients(firm: Firm) -> list[str]:
    """The chosen channel; else, with Slack set up, each connected admin's Slack
    user; else NO_CHANNEL (the outbox keeps it; Slack records it as canceled)."""
    if firm.notify_channel:
        return [firm.notify_channel]
    if settings().notice_provider == "outbox":
        return [NO_CHANNEL]
    return linked_admins(firm) or [NO_CHANNEL]


def linked_admins(firm: Firm) -> list[str]:
    """The Slack user ids of the firm's admins whose connection is current (as
    `access.resolve` accepts them), oldest admin first."""
    rows = (Staff.select(Staff.slack_user_id).join(Firm)
            .where(Staff.firm == firm, Staff.role == "admin", Staff.slack_user_id.is_null(False),
                   Staff.slack_team_id == Firm.slack_team_id,
                   Staff.slack_linked_at.is_null(False),
                   Staff.password_changed_at <= Staff.slack_linked_at)
            .order_by(Staff.id))
    return list(dict.fromkeys(row.slack_user_id for row in rows))


def others(message: Message) -> list[Message]:
    """When `message` is the first of a notice sent by direct message: the same
    notice's messages to the other admins, still waiting to be sent."""
    key = message.dedupe_key
    if not key or DM in key or message.to_addr == NO_CHANNEL:
        return []
    return list(Message.select().where(
        Message.status == Status.PENDING, Message.created_at >= message.created_at,
        Message.firm == message.firm_id, Message.dedupe_key.startswith(key + DM)))


def invite_expired(invite) -> Message | None:
    client = invite.client
    sent = clock.short_date(invite.sent_at, zone_for(client))
    how = "SMS" if invite.channel == "sms" else "email"
    text = (f"{client.name}'s invite expired without being accepted (sent {sent} by {how}). "
            f"Send a new link: /ledgersync resend {client.name}")
    return write(invite.firm_id, "expired", text, client=client, invite=invite,
                 dedupe_key=f"notice-expired-{invite.id}")


def delivery_failed(message: Message) -> Message | None:
    client = message.client
    who = client.name if client else message.to_addr
    how = "text" if message.channel == "sms" else "email"
    reason = message.error_message or "no reason given"
    text = f"A {how} to {who} could not be delivered: {reason}."
    return write(message.firm_id, "delivery_failed", text, client=client, invite=message.invite_id,
                 dedupe_key=f"notice-failed-{message.id}")
