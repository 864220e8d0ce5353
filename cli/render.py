"""Plain-text rendering of core results for the terminal."""

from __future__ import annotations

from core import clock, phones
from core.invites import Sent
from core.models import Client, Message
from core.quiet_hours import zone_for
from core.status import DELIVERY_WORDS, ClientStatus


def who(client: Client) -> str:
    parts = [client.name]
    if client.phone:
        parts.append(phones.display(client.phone))
    if client.email:
        parts.append(client.email)
    return " · ".join(parts)


def client_row(client: Client) -> str:
    banks = f"  banks: {', '.join(client.banks)}" if client.banks else ""
    return f"{client.id:>5}  {who(client)}{banks}"


def sent(result: Sent, verb: str) -> str:
    invite, message = result.invite, result.message
    tz = zone_for(invite.client)
    how = "by SMS" if invite.channel == "sms" else "by email"
    to = phones.display(message.to_addr) if invite.channel == "sms" else message.to_addr
    state = DELIVERY_WORDS.get(message.status, message.status)
    if message.status == "pending":
        state = "queued to send"
    return (f"{verb} {invite.client.name} {how} at {to}: {state}. "
            f"The link expires {clock.short_date(invite.expires_at, tz)}.")


def status(info: ClientStatus) -> str:
    tz = zone_for(info.client)
    lines = [who(info.client), f"Invite: {info.state}"
             + (f" (link expires {info.link_expires})" if info.state == "pending" else "")]
    if info.opted_out:
        lines.append("Opted out of messages: nothing will be sent until they reply START.")
    for line in info.timeline:
        lines.append(f"  {clock.short_datetime(line.at, tz):<24} {line.text}")
    if info.connections:
        lines.append("Bank connections:")
        for c in info.connections:
            lines.append(f"  {c.institution_name}: {c.status.replace('_', ' ')}")
    else:
        lines.append("Bank connections: none yet")
    return "\n".join(lines)


def message(m: Message) -> str:
    when = clock.short_datetime(m.created_at, clock.zone("UTC"))
    head = f"#{m.id} {when} UTC  {m.channel.upper()} to {m.to_addr}  [{m.kind}, {m.status}]"
    if m.channel == "sms":
        head += f"  {m.segments} segment{'s' if m.segments != 1 else ''}"
    subject = f"\nSubject: {m.subject}" if m.subject else ""
    return f"{head}{subject}\n{m.body}\n"


GUIDE = """
LedgerSync Connect is running on its embedded defaults.
  database: {db}
  messages: kept in the local outbox (no Twilio or SMTP set up)

Try an invite end to end, in another terminal:
  . .venv/bin/activate
  ledgersync clients list
  ledgersync invite "Maria Gonzalez"     # by SMS, to her phone
  ledgersync outbox                      # the text she got, with her link
  ledgersync status maria                # the timeline so far
  ledgersync resend maria --email        # a new link by email; the old one stops working
  ledgersync remind maria                # the same link again (once a day)
  ledgersync pending                     # open invites, soonest expiry first
The outbox is also a page: {base}/outbox
"""
