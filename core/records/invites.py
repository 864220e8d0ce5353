"""Invites (one open invite a client), and bulk runs with their items."""

from __future__ import annotations

from peewee import AutoField, CharField, ForeignKeyField, TextField

from core.platform import clock

from .base import BaseModel, JSONField, UTCDateTimeField
from .clients import Client
from .firms import Firm, Staff


class Invite(BaseModel):
    """One link sent to one client. The raw token is never stored in clear:
    `token_digest` (HMAC with SECRET_KEY) finds it, `token_sealed` (encrypted with
    ENCRYPTION_KEYS) lets a reminder repeat the same link."""

    id = AutoField()
    firm = ForeignKeyField(Firm, backref="invites", on_delete="CASCADE")
    client = ForeignKeyField(Client, backref="invites", on_delete="CASCADE")
    purpose = CharField(max_length=10, default="connect")  # connect|reconnect
    channel = CharField(max_length=5)  # sms|email
    token_digest = CharField(max_length=64, unique=True)
    token_sealed = TextField()
    banks = JSONField(default=list)
    sent_by = ForeignKeyField(Staff, null=True, on_delete="SET NULL")
    sent_at = UTCDateTimeField()
    expires_at = UTCDateTimeField()
    reminder_due_at = UTCDateTimeField()
    reminded_at = UTCDateTimeField(null=True)  # automatic reminder sent, or ruled out
    last_manual_reminder_at = UTCDateTimeField(null=True)
    first_clicked_at = UTCDateTimeField(null=True)
    accepted_at = UTCDateTimeField(null=True)
    revoked_at = UTCDateTimeField(null=True)
    superseded_at = UTCDateTimeField(null=True)
    expired_at = UTCDateTimeField(null=True)  # when the expiry was recorded
    replaces = ForeignKeyField("self", null=True, on_delete="SET NULL", backref="replaced_by")
    # What came of its text, copied from the text's own record whenever the sender or a
    # receipt changes it (`messaging.deliveries`): sent, delivered, failed… Kept here
    # too so that the funnel reads invites without joining every text.
    delivery = CharField(max_length=16, null=True)
    delivery_error = CharField(max_length=300, null=True)

    def status(self, now) -> str:
        """accepted | revoked | superseded | expired | pending, as of `now`."""
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.superseded_at:
            return "superseded"
        if self.expired_at or now >= self.expires_at:
            return "expired"
        return "pending"


OPEN_INVITE = (
    Invite.accepted_at.is_null() & Invite.revoked_at.is_null() & Invite.superseded_at.is_null()
)


Invite.add_index(
    Invite.index(Invite.reminder_due_at, name="invite_reminder_due").where(
        OPEN_INVITE & Invite.reminded_at.is_null()
    )
)


Invite.add_index(
    Invite.index(Invite.client, name="invite_one_open_per_client", unique=True).where(
        OPEN_INVITE & Invite.expired_at.is_null()
    )
)


Invite.add_index(
    Invite.index(Invite.expires_at, name="invite_expiry_due").where(
        OPEN_INVITE & Invite.expired_at.is_null()
    )
)


class BulkRun(BaseModel):
    """Many clients invited at once: who asked, whom, and how each one went."""

    id = AutoField()
    firm = ForeignKeyField(Firm, backref="bulk_runs", on_delete="CASCADE")
    started_by = ForeignKeyField(Staff, null=True, on_delete="SET NULL")
    selection = CharField(max_length=20)  # not_invited | expired | needs_reconnect | list
    channel = CharField(max_length=5, null=True)  # sms | email | None: each client's own
    purpose = CharField(max_length=10, default="connect")
    status = CharField(max_length=12, default="confirming")  # confirming|running|canceled|done
    created_at = UTCDateTimeField(default=clock.now)
    started_at = UTCDateTimeField(null=True)
    finished_at = UTCDateTimeField(null=True)
    canceled_at = UTCDateTimeField(null=True)
    slack_channel = CharField(max_length=32, null=True)
    slack_ts = CharField(max_length=32, null=True)


class BulkItem(BaseModel):
    id = AutoField()
    run = ForeignKeyField(BulkRun, backref="items", on_delete="CASCADE")
    client = ForeignKeyField(Client, null=True, on_delete="SET NULL")
    label = CharField(max_length=200)  # the name, phone or email as given
    channel = CharField(max_length=5, null=True)
    # queued | sending | waiting (quiet hours) | sent | failed | skipped | canceled
    outcome = CharField(max_length=10, default="queued")
    reason = CharField(max_length=300, null=True)
    invite = ForeignKeyField(Invite, null=True, on_delete="SET NULL")
    not_before = UTCDateTimeField(null=True)
    updated_at = UTCDateTimeField(default=clock.now)

    class Meta:
        indexes = ((("run", "outcome"), False), (("run", "client"), True))


# A run's next due item, in order, found at once however many are done (a claim
# filters on the outcome, so without it PostgreSQL walked the sent ones each time).
BulkItem.add_index(BulkItem.index(BulkItem.run, BulkItem.id, name="bulk_item_due")
                   .where(BulkItem.outcome.in_(["queued", "waiting"])))
