"""What happened to a client: the invite timeline, deliveries, opt-out and bank
connections, in words a person reads. Drivers render it (CLI, Slack card)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from . import clock, invites, optouts
from .models import BankConnection, Client, Event, Invite, Message
from .quiet_hours import zone_for

EVENT_WORDS = {
    "client.added": "Added as a client",
    "invite.sent": "Invited by {channel_word}",
    "invite.resent": "New link sent by {channel_word} (the old one stopped working)",
    "invite.reminded": "Reminded",
    "invite.opened": "Opened the link",
    "invite.accepted": "Accepted; client account ready",
    "invite.revoked": "Invite revoked",
    "invite.expired": "Link expired",
    "reminder.skipped": "Automatic reminder not sent: {reason}",
    "optout.stopped": "Opted out of messages",
    "optout.resumed": "Opted back in",
    "invite.new_link_requested": "Asked for a new link",
    "invite.new_link_by_text": "Asked for a new link by text; one was sent",
    "client.texted": "Texted the firm ({chars} characters)",
    "client.answered": "Answered by text from the firm's thread",
}

DELIVERY_WORDS = {
    "pending": "waiting to send",
    "sending": "sending",
    "queued": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "undelivered": "not delivered",
    "failed": "failed",
    "canceled": "not sent",
}


@dataclass
class Line:
    at: datetime
    text: str


@dataclass
class ClientStatus:
    client: Client
    invite: Invite | None
    state: str  # not invited | pending | accepted | expired | revoked | superseded
    opted_out: bool
    timeline: list[Line] = field(default_factory=list)
    connections: list[BankConnection] = field(default_factory=list)
    link_expires: str | None = None


def for_client(client: Client, now: datetime | None = None, limit: int = 30) -> ClientStatus:
    now = now or clock.now()
    invite = invites.latest(client)
    state = invite.status(now) if invite else "not invited"
    tz = zone_for(client)
    return ClientStatus(
        client=client,
        invite=invite,
        state=state,
        opted_out=any(optouts.is_opted_out(a) for a in (client.phone, client.email)),
        timeline=_timeline(client, limit),
        connections=list(BankConnection.select().where(BankConnection.client == client)),
        link_expires=clock.short_date(invite.expires_at, tz) if invite else None,
    )


def _timeline(client: Client, limit: int) -> list[Line]:
    lines = [Line(e.at, _event_text(e)) for e in
             Event.select().where(Event.client == client).order_by(Event.at.desc()).limit(limit)]
    for m in Message.select().where(Message.client == client, Message.direction == "out") \
            .order_by(Message.id.desc()).limit(limit):
        lines.append(Line(m.updated_at, delivery_text(m)))
    return sorted(lines, key=lambda line: line.at)[-limit:]


def _event_text(event: Event) -> str:
    words = EVENT_WORDS.get(event.kind, event.kind)
    try:
        detail = dict(event.detail or {})
        detail["channel_word"] = "SMS" if detail.get("channel") == "sms" else "email"
        return words.format(**detail)
    except (KeyError, IndexError):
        return words.split(":")[0]


def delivery_text(message: Message) -> str:
    state = DELIVERY_WORDS.get(message.status, message.status)
    if message.channel == "slack":
        what = message.kind.removeprefix("notice_").replace("_", " ")
        return f"Firm notified ({what}) in {message.to_addr}: {state}"
    labels = {"invite": "Invite", "reminder": "Reminder", "auto_reminder": "Automatic reminder",
              "reply": "Staff reply"}
    label = labels.get(message.kind) or (
        "Automatic answer" if message.kind.startswith("answer_") else
        message.kind.replace("_", " ").capitalize())
    channel = "SMS" if message.channel == "sms" else "email"
    text = f"{label} {channel} to {message.to_addr}: {state}"
    if message.error_message:
        text += f" ({message.error_message})"
    return text
