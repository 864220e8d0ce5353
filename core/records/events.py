"""The append-only event log: every change of state is recorded here."""

from __future__ import annotations

from peewee import AutoField, CharField, ForeignKeyField

from core.platform import clock, db

from .base import BaseModel, JSONField, UTCDateTimeField
from .clients import Client
from .firms import Firm
from .invites import Invite


class Event(BaseModel):
    """Append-only log: who did what, when. Status views read it."""

    id = AutoField()
    at = UTCDateTimeField(default=clock.now, index=True)
    firm = ForeignKeyField(Firm, null=True, on_delete="CASCADE")
    client = ForeignKeyField(Client, null=True, on_delete="CASCADE")
    invite = ForeignKeyField(Invite, null=True, on_delete="SET NULL")
    actor = CharField(max_length=80, default="system")
    kind = CharField(max_length=40)
    detail = JSONField(default=dict)

    class Meta:
        indexes = ((("client", "at"), False), (("firm", "at"), False))


def record(kind: str, *, firm=None, client=None, invite=None, actor: str = "system", **detail):
    """Append one event; `actor` is "staff:<id>", "support:<id>", "client" or "system"."""
    if client is not None and firm is None:
        firm = client.firm_id
    return db.create(
        Event,
        kind=kind, firm=firm, client=client, invite=invite, actor=actor, detail=detail
    )


def actor_of(staff) -> str:
    return f"staff:{staff.id}" if staff is not None else "system"
