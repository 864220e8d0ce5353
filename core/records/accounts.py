"""The client's own account: the account itself, its sessions, its sign-in attempts."""

from __future__ import annotations

from peewee import AutoField, CharField, ForeignKeyField, IntegerField

from core.platform import clock

from .base import BaseModel, JSONField, UTCDateTimeField
from .clients import Client
from .invites import Invite


class ClientAccount(BaseModel):
    """The limited account a client gets by accepting: add and restore bank connections."""

    id = AutoField()
    client = ForeignKeyField(Client, backref="accounts", unique=True, on_delete="CASCADE")
    created_at = UTCDateTimeField(default=clock.now)


class ClientSession(BaseModel):
    """A signed-in client (core/invitations/sessions.py): the browser keeps a random id, the
    database only its SHA-256; `ended_at` ends it everywhere."""

    id = AutoField()
    client = ForeignKeyField(Client, backref="sessions", on_delete="CASCADE")
    invite = ForeignKeyField(Invite, null=True, on_delete="SET NULL")
    digest = CharField(max_length=64, unique=True)
    created_at = UTCDateTimeField(default=clock.now)
    last_seen_at = UTCDateTimeField(default=clock.now)
    ended_at = UTCDateTimeField(null=True)
    end_reason = CharField(max_length=40, null=True)


class SignInAttempt(BaseModel):
    """A client signing in again with a one-time code (core/invitations/sign_in.py). The browser
    keeps a random nonce, the database its SHA-256 (`digest`) and an HMAC of the code
    (`code_digest`), never the code; `clients` are the accounts the address matched
    (none for an address nobody has: the page answers the same)."""

    id = AutoField()
    digest = CharField(max_length=64, unique=True)
    code_digest = CharField(max_length=64)
    channel = CharField(max_length=5)  # sms | email: how the address was given
    clients = JSONField(default=list)
    created_at = UTCDateTimeField(default=clock.now)
    expires_at = UTCDateTimeField()
    tries = IntegerField(default=0)
    used_at = UTCDateTimeField(null=True)  # the right code: single use
    chosen_at = UTCDateTimeField(null=True)  # an account chosen (several matched)
    ended_at = UTCDateTimeField(null=True)
    end_reason = CharField(max_length=40, null=True)
