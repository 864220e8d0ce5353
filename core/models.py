"""Peewee models: the database is the source of truth for everything.

Every instant is stored as UTC (naive in the column, aware in Python) the same
way on SQLite and PostgreSQL; conversion to a reader's zone happens at the edges.
"""

from __future__ import annotations

import json
from enum import StrEnum

from peewee import (
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from . import clock
from .db import database


class UTCDateTimeField(DateTimeField):
    """Aware UTC in Python, naive UTC in the column (text-comparable on SQLite)."""

    def db_value(self, value):
        if value is None:
            return None
        return clock.as_utc(value).replace(tzinfo=None)

    def python_value(self, value):
        value = super().python_value(value)
        if value is None or isinstance(value, str):
            return value
        return clock.as_utc(value)


class JSONField(TextField):
    def db_value(self, value):
        return None if value is None else json.dumps(value, sort_keys=True)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False

    def refreshed(self):
        """The same row as it is in the database now."""
        return type(self).get_by_id(self._pk)


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
    # Who is asking, on the client's pages (core/firm_settings.py): a logo (https only),
    # the header's colour, a phone and an email clients can check with, their language.
    logo_url = CharField(max_length=500, null=True)
    brand_color = CharField(max_length=7, null=True)  # #rrggbb
    contact_phone = CharField(max_length=20, null=True)  # E.164
    contact_email = CharField(max_length=254, null=True)
    language = CharField(max_length=8, default="en")  # clients' default (core/i18n.py)
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


class ClientAccount(BaseModel):
    """The limited account a client gets by accepting: add and restore bank connections."""

    id = AutoField()
    client = ForeignKeyField(Client, backref="accounts", unique=True, on_delete="CASCADE")
    created_at = UTCDateTimeField(default=clock.now)


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


class ClientSession(BaseModel):
    """A signed-in client (core/sessions.py): the browser keeps a random id, the
    database only its SHA-256; `ended_at` ends it everywhere."""

    id = AutoField()
    client = ForeignKeyField(Client, backref="sessions", on_delete="CASCADE")
    invite = ForeignKeyField(Invite, null=True, on_delete="SET NULL")
    digest = CharField(max_length=64, unique=True)
    created_at = UTCDateTimeField(default=clock.now)
    last_seen_at = UTCDateTimeField(default=clock.now)
    ended_at = UTCDateTimeField(null=True)
    end_reason = CharField(max_length=40, null=True)


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


class Status(StrEnum):
    """Where a message stands (`Message.status`). Receipts only ever move it
    forward (`core.deliveries.RANK`)."""

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


class OptOut(BaseModel):
    """An address (E.164 phone or email) that asked for no more messages."""

    address = CharField(max_length=254, primary_key=True)
    opted_out = BooleanField(default=True)
    source = CharField(max_length=40)
    changed_at = UTCDateTimeField(default=clock.now)


class BankConnection(BaseModel):
    id = AutoField()
    client = ForeignKeyField(Client, backref="connections", on_delete="CASCADE")
    institution_id = CharField(max_length=64)
    institution_name = CharField(max_length=200)
    status = CharField(max_length=16, default="active")  # active|needs_reconnect|disconnected
    last_error = CharField(max_length=300, null=True)
    created_at = UTCDateTimeField(default=clock.now)
    updated_at = UTCDateTimeField(default=clock.now)
    # The provider's side (core/banks.py): which provider, its item, the item's access
    # token sealed under ENCRYPTION_KEYS, and where /transactions/sync left off.
    provider = CharField(max_length=16, default="sandbox")
    item_id = CharField(max_length=100, null=True, index=True)
    access_sealed = TextField(null=True)
    sync_cursor = TextField(null=True)
    synced_at = UTCDateTimeField(null=True)
    # The automatic reconnect invite of the current break: when it is due (a text waits
    # for the client's morning), and when it was sent or ruled out (once a break).
    auto_invite_due_at = UTCDateTimeField(null=True)
    auto_invited_at = UTCDateTimeField(null=True)


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


class SlackInstall(BaseModel):
    """A Slack workspace (or organisation) the app is installed in, by OAuth: its bot
    token and refresh token sealed under ENCRYPTION_KEYS (credentials), one row per
    workspace (`key`), replaced by a reinstall, deleted when the app is removed."""

    id = AutoField()
    key = CharField(max_length=120, unique=True)  # client id : enterprise : team
    client_id = CharField(max_length=64)
    app_id = CharField(max_length=32, null=True)
    enterprise_id = CharField(max_length=32, null=True)
    enterprise_name = CharField(max_length=200, null=True)
    team_id = CharField(max_length=32, null=True, index=True)
    team_name = CharField(max_length=200, null=True)
    is_enterprise_install = BooleanField(default=False)
    bot_id = CharField(max_length=32, null=True)
    bot_user_id = CharField(max_length=32, null=True)
    bot_scopes = TextField(default="")
    bot_token_sealed = TextField()
    bot_refresh_token_sealed = TextField(null=True)
    bot_token_expires_at = UTCDateTimeField(null=True)
    installer_user_id = CharField(max_length=32, null=True)
    installed_at = UTCDateTimeField(default=clock.now)
    updated_at = UTCDateTimeField(default=clock.now)


class OAuthState(BaseModel):
    """An "Add to Slack" attempt in flight: the digest of its `state`, single use."""

    digest = CharField(max_length=64, primary_key=True)
    expires_at = UTCDateTimeField()


class SlackLinkRequest(BaseModel):
    """A one-time page that links a Slack user to a LedgerSync account (asked for by
    `/ledgersync connect`): the digest of its token, who asked, and its life."""

    digest = CharField(max_length=64, primary_key=True)
    team_id = CharField(max_length=32)
    user_id = CharField(max_length=32)
    created_at = UTCDateTimeField(default=clock.now)
    expires_at = UTCDateTimeField()
    # The browser that opened it first (digest of a cookie it was given): only it may use it.
    browser = CharField(max_length=64, null=True)
    used_at = UTCDateTimeField(null=True)


class BankAccount(BaseModel):
    """An account inside a bank connection, as the provider describes it."""

    id = AutoField()
    connection = ForeignKeyField(BankConnection, backref="bank_accounts", on_delete="CASCADE")
    provider_account_id = CharField(max_length=100)
    name = CharField(max_length=200)
    official_name = CharField(max_length=200, null=True)
    mask = CharField(max_length=8, null=True)
    type = CharField(max_length=20, default="depository")
    subtype = CharField(max_length=40, null=True)
    currency = CharField(max_length=3, default="USD")
    balance_cents = BigIntegerField(null=True)  # the current balance
    updated_at = UTCDateTimeField(default=clock.now)

    class Meta:
        indexes = ((("connection", "provider_account_id"), True),)


class BankTransaction(BaseModel):
    """One transaction, kept in step with the provider (`core.bank_sync`). `amount_cents`
    is as the account holder sees it: negative is money out."""

    id = AutoField()
    account = ForeignKeyField(BankAccount, backref="transactions", on_delete="CASCADE")
    connection = ForeignKeyField(BankConnection, on_delete="CASCADE")
    provider_transaction_id = CharField(max_length=100)
    posted_on = DateField()
    name = CharField(max_length=300)
    merchant_name = CharField(max_length=200, null=True)
    category = CharField(max_length=100, null=True)
    amount_cents = BigIntegerField()
    currency = CharField(max_length=3, default="USD")
    pending = BooleanField(default=False)
    created_at = UTCDateTimeField(default=clock.now)
    updated_at = UTCDateTimeField(default=clock.now)

    class Meta:
        indexes = (
            (("connection", "provider_transaction_id"), True),
            (("account", "posted_on", "id"), False),
        )


class BankLinkSession(BaseModel):
    """A hosted bank-link session (Plaid Hosted Link) for a signed-in client: to add a
    bank, or to restore `connection` (update mode). The provider's link token is sealed;
    its digest finds the session when the provider's webhook names it."""

    id = AutoField()
    client = ForeignKeyField(Client, on_delete="CASCADE")
    connection = ForeignKeyField(BankConnection, null=True, on_delete="CASCADE")
    purpose = CharField(max_length=10, default="connect")  # connect | restore
    token_digest = CharField(max_length=64, unique=True)
    token_sealed = TextField()
    status = CharField(max_length=12, default="open")  # open | finishing | done | exited
    outcome = CharField(max_length=300, null=True)
    created_at = UTCDateTimeField(default=clock.now)
    expires_at = UTCDateTimeField()
    claimed_at = UTCDateTimeField(null=True)  # when a process began finishing it
    finished_at = UTCDateTimeField(null=True)


class ProviderWebhook(BaseModel):
    """A provider's webhook body, by its SHA-256: when it last came and how many times it
    came again. A record only: every delivery is applied (`core.bank_webhooks`)."""

    digest = CharField(max_length=64, primary_key=True)
    provider = CharField(max_length=16)
    kind = CharField(max_length=80)
    item_id = CharField(max_length=100, null=True)
    received_at = UTCDateTimeField(default=clock.now)
    repeats = IntegerField(default=0)


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



class SignInAttempt(BaseModel):
    """A client signing in again with a one-time code (core/signin.py). The browser
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

class SchemaVersion(BaseModel):
    version = IntegerField(primary_key=True)
    name = CharField(max_length=200)
    applied_at = UTCDateTimeField(default=clock.now)


ALL_MODELS = [
    Firm,
    Staff,
    SupportStaff,
    Client,
    ClientAccount,
    Invite,
    ClientSession,
    Message,
    OptOut,
    BankConnection,
    Event,
    ClientThread,
    BulkRun,
    BulkItem,
    EarlyReceipt,
    SlackInstall,
    OAuthState,
    SlackLinkRequest,
    BankAccount,
    BankTransaction,
    BankLinkSession,
    ProviderWebhook,
    ApiToken,
    SignInAttempt,
]
