"""Notices to a firm (in its Slack channel): an invite expired, a delivery failed…

They go through the same outbound port as client messages (channel `slack`), so
they are exactly-once too (one `dedupe_key` per notice) and, with no Slack set
up, land in the local outbox.
"""

from __future__ import annotations

from . import clock, outbound
from .models import Firm, Message
from .quiet_hours import zone_for
from .templates import Rendered

NO_CHANNEL = "(no channel chosen)"


def queue(firm: Firm | int, kind: str, text: str, *, client=None, invite=None,
          dedupe_key: str) -> Message | None:
    firm = firm if isinstance(firm, Firm) else Firm.get_by_id(firm)
    return outbound.queue(
        firm=firm, channel="slack", kind=f"notice_{kind}",
        to_addr=firm.notify_channel or NO_CHANNEL,
        rendered=Rendered(body=text), client=client, invite=invite, dedupe_key=dedupe_key,
    )


def invite_expired(invite) -> Message | None:
    client = invite.client
    sent = clock.short_date(invite.sent_at, zone_for(client))
    how = "SMS" if invite.channel == "sms" else "email"
    text = (f"{client.name}'s invite expired without being accepted (sent {sent} by {how}). "
            f"Send a new link: /ledgersync resend {client.name}")
    return queue(invite.firm_id, "expired", text, client=client, invite=invite,
                 dedupe_key=f"notice-expired-{invite.id}")


def delivery_failed(message: Message) -> Message | None:
    client = message.client
    who = client.name if client else message.to_addr
    how = "text" if message.channel == "sms" else "email"
    reason = message.error_message or "no reason given"
    text = f"A {how} to {who} could not be delivered: {reason}."
    return queue(message.firm_id, "delivery_failed", text, client=client, invite=message.invite_id,
                 dedupe_key=f"notice-failed-{message.id}")
