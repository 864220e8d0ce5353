"""The embedded sender: messages stay in the database, readable with
`ledgersync outbox` and on the outbox page, so everything can be tried on one machine.

The database keeps a message's link masked like any other; the outbox (development
only, to this machine) shows the developer the working link, rebuilt as a sender would."""

from __future__ import annotations

from core.records import Message

from . import outbound
from .outbound import SendResult


class OutboxSender:
    def send(self, message: Message) -> SendResult:
        return SendResult(status="delivered", provider="outbox", provider_id=f"outbox-{message.id}")

    def find_sent(self, message: Message) -> SendResult | None:
        return None  # the outbox entry is written only when the send completes


def latest(firm=None, limit: int = 20) -> list[Message]:
    """The `limit` newest messages, newest first (by the instant each was written)."""
    rows = Message.select().where(Message.provider == "outbox")
    if firm is not None:
        rows = rows.where(Message.firm == firm)
    return list(rows.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit))


def text(message: Message) -> str:
    """The message as its recipient would read it, working link included."""
    rebuilt = outbound.text_of(message)
    return rebuilt[0] if rebuilt else message.body
