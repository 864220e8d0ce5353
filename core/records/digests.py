"""The firm digests sent: one row per firm and period, claimed once (its unique `key`,
also the notice's dedupe key), holding what the digest said."""

from __future__ import annotations

from peewee import AutoField, CharField, ForeignKeyField

from core.platform import clock

from .base import BaseModel, JSONField, UTCDateTimeField
from .firms import Firm
from .messages import Message


class FirmDigest(BaseModel):
    """A firm's digest for one period: written once, in the transaction that writes its
    notice; a second writer for the same `key` (another clock) is refused by its index."""

    id = AutoField()
    firm = ForeignKeyField(Firm, backref="digests", on_delete="CASCADE")
    key = CharField(max_length=80, unique=True)  # digest-<firm>-<first day of the period>
    schedule = CharField(max_length=8)  # monday | daily
    period_start = UTCDateTimeField()
    period_end = UTCDateTimeField()
    content = JSONField()  # what it said (core/reports/digest.py `Digest`)
    message = ForeignKeyField(Message, null=True, on_delete="SET NULL")
    created_at = UTCDateTimeField(default=clock.now)
