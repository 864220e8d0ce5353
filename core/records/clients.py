"""A firm's clients."""

from __future__ import annotations

from peewee import AutoField, CharField, ForeignKeyField

from core.platform import clock

from .base import BaseModel, JSONField, UTCDateTimeField
from .firms import Firm


class Client(BaseModel):
    id = AutoField()
    firm = ForeignKeyField(Firm, backref="clients", on_delete="CASCADE")
    name = CharField(max_length=200)
    name_key = CharField(max_length=200, index=True)
    phone = CharField(max_length=20, null=True)  # E.164
    phone_problem = CharField(max_length=200, null=True)  # e.g. "not a mobile number"
    email = CharField(max_length=254, null=True)
    timezone = CharField(max_length=64, null=True)
    banks = JSONField(default=list)  # pre-selected institutions
    language = CharField(max_length=8, null=True)  # None: the firm's
    created_at = UTCDateTimeField(default=clock.now)
    updated_at = UTCDateTimeField(default=clock.now)

    class Meta:
        indexes = (
            (("firm", "name_key"), False),
            (("firm", "phone"), False),
            (("firm", "email"), False),
        )

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.split() else self.name

    def __str__(self):
        return self.name
