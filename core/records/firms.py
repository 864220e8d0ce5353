"""Firms, their staff, LedgerSync's support staff, and staff's API tokens."""

from __future__ import annotations

from peewee import AutoField, BooleanField, CharField, ForeignKeyField

from core.platform import clock

from .base import BaseModel, UTCDateTimeField


class Firm(BaseModel):
    id = AutoField()
    name = CharField(max_length=200)
    slack_team_id = CharField(max_length=32, null=True, unique=True)
    # active | trialing | past_due | canceled
    subscription_status = CharField(max_length=16, default="active")
    suspended = BooleanField(default=False)
    notify_channel = CharField(max_length=32, null=True)
    timezone = CharField(max_length=64, default="America/New_York")
    phone_region = CharField(max_length=2, default="US")
    clients_may_request_links = BooleanField(default=False)
    # A connection that needs restoring sends the client a reconnect invite by itself.
    auto_reconnect_invites = BooleanField(default=False)
    # Who is asking, on the client's pages (core/firms/firm_settings.py): a logo (https only),
    # the header's colour, a phone and an email clients can check with, their language.
    logo_url = CharField(max_length=500, null=True)
    brand_color = CharField(max_length=7, null=True)  # #rrggbb
    contact_phone = CharField(max_length=20, null=True)  # E.164
    contact_email = CharField(max_length=254, null=True)
    language = CharField(max_length=8, default="en")  # clients' default (core/platform/i18n.py)
    # The digest to the notices channel (core/reports/digest.py): off | monday | daily.
    digest = CharField(max_length=8, default="monday")
    created_at = UTCDateTimeField(default=clock.now)

    def __str__(self):
        return self.name


class Staff(BaseModel):
    """A firm's LedgerSync user: signs in with email and password, acts from Slack."""

    id = AutoField()
    firm = ForeignKeyField(Firm, backref="staff", on_delete="CASCADE")
    email = CharField(max_length=254, unique=True)
    name = CharField(max_length=200, default="")
    password_hash = CharField(max_length=255)
    password_changed_at = UTCDateTimeField(default=clock.now)
    role = CharField(max_length=8, default="staff")  # admin|staff
    slack_team_id = CharField(max_length=32, null=True)
    slack_user_id = CharField(max_length=32, null=True)
    slack_linked_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=clock.now)

    class Meta:
        indexes = ((("slack_team_id", "slack_user_id"), False),)


class SupportStaff(BaseModel):
    """LedgerSync's own support team: every firm, read-only."""

    id = AutoField()
    email = CharField(max_length=254, unique=True)
    name = CharField(max_length=200, default="")
    slack_team_id = CharField(max_length=32, null=True)
    slack_user_id = CharField(max_length=32, null=True)
    created_at = UTCDateTimeField(default=clock.now)


class ApiToken(BaseModel):
    """A connected application's token for the read API, exchanged once for a staff
    member's email and password. Only its SHA-256 is kept (shown once, never again)."""

    id = AutoField()
    firm = ForeignKeyField(Firm, on_delete="CASCADE")
    staff = ForeignKeyField(Staff, backref="api_tokens", on_delete="CASCADE")
    digest = CharField(max_length=64, unique=True)
    hint = CharField(max_length=12)  # `lsk_AbCd`: enough to tell tokens apart
    label = CharField(max_length=100, default="")
    created_at = UTCDateTimeField(default=clock.now)
    last_used_at = UTCDateTimeField(null=True)
    revoked_at = UTCDateTimeField(null=True)
    revoked_by = CharField(max_length=80, null=True)
