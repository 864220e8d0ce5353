"""Every message in and out, opt-outs, a client's Slack thread, and receipts that came
before their message."""

from __future__ import annotations

from enum import StrEnum

from peewee import AutoField, BooleanField, CharField, ForeignKeyField, IntegerField, TextField

from core.platform import clock

from .base import BaseModel, UTCDateTimeField
from .clients import Client
from .firms import Firm
from .invites import Invite


class Status(StrEnum):
    """Where a message stands (`Message.status`). Receipts only ever move it
    forward (`core.messaging.deliveries.RANK`)."""

    PENDING = "pending"
    SENDING = "sending"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELED = "canceled"


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    SLACK = "slack"  # firm notices


class Kind(StrEnum):
    """What a message is. Firm notices are `notice_<what>`, answers to a client's
    text `answer_<what>`."""

    INVITE = "invite"
    REMINDER = "reminder"
    AUTO_REMINDER = "auto_reminder"
    REPLY = "reply"
    INBOUND = "inbound"


class Message(BaseModel):
    """Every SMS and email, in and out. Outgoing ones are written first (status
    `pending`) in the same transaction as the decision to send, then delivered."""

    id = AutoField()
    firm = ForeignKeyField(Firm, backref="messages", null=True, on_delete="CASCADE")
    client = ForeignKeyField(Client, backref="messages", null=True, on_delete="SET NULL")
    invite = ForeignKeyField(Invite, backref="messages", null=True, on_delete="SET NULL")
    direction = CharField(max_length=3, default="out")  # out|in
    channel = CharField(max_length=5)  # sms|email
    kind = CharField(max_length=40)  # invite|reminder|auto_reminder|reply|notice_…|answer_…
    dedupe_key = CharField(max_length=120, null=True, unique=True)
    to_addr = CharField(max_length=254)
    from_addr = CharField(max_length=254, null=True)
    subject = CharField(max_length=200, null=True)
    body = TextField()
    html = TextField(null=True)
    segments = IntegerField(default=1)
    encoding = CharField(max_length=6, default="GSM-7")
    status = CharField(max_length=12, default=Status.PENDING)
    provider = CharField(max_length=10, null=True)  # outbox|twilio|smtp
    provider_id = CharField(max_length=64, null=True, unique=True)
    error_code = CharField(max_length=16, null=True)
    error_message = CharField(max_length=300, null=True)
    attempts = IntegerField(default=0)
    # Pending until this slot of the sender's pace, reserved for it (jobs/pacing.py).
    not_before = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=clock.now)
    sent_at = UTCDateTimeField(null=True)
    updated_at = UTCDateTimeField(default=clock.now)


Message.add_index(
    Message.index(Message.created_at, name="message_undelivered").where(
        Message.status.in_([Status.PENDING, Status.SENDING])
    )
)


# Deliveries that failed, by when (the funnel's failures by reason: a day, every firm).
Message.add_index(
    Message.index(Message.updated_at, name="message_failed").where(
        Message.status.in_([Status.UNDELIVERED, Status.FAILED])
    )
)


class OptOut(BaseModel):
    """An address (E.164 phone or email) that asked for no more messages."""

    address = CharField(max_length=254, primary_key=True)
    opted_out = BooleanField(default=True)
    source = CharField(max_length=40)
    changed_at = UTCDateTimeField(default=clock.now)


class ClientThread(BaseModel):
    """The chat thread where a client's texts land and staff answer them."""

    id = AutoField()
    client = ForeignKeyField(Client, backref="threads", on_delete="CASCADE")
    channel = CharField(max_length=32)
    ts = CharField(max_length=32)
    created_at = UTCDateTimeField(default=clock.now)

    class Meta:
        indexes = ((("channel", "ts"), True), (("client", "channel"), True))


class EarlyReceipt(BaseModel):
    """A delivery receipt that arrived before its message recorded the provider's
    id (the provider can call back faster than the sender saves); applied then."""

    provider_id = CharField(max_length=64, primary_key=True)
    status = CharField(max_length=12)
    error_code = CharField(max_length=16, null=True)
    reason = CharField(max_length=300, null=True)
    address_problem = CharField(max_length=200, null=True)
    at = UTCDateTimeField(default=clock.now)
