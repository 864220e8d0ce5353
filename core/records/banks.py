"""Bank connections, their accounts and transactions, hosted link sessions, and the
provider's webhooks as received."""

from __future__ import annotations

from peewee import (
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DateField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from core.platform import clock

from .base import BaseModel, UTCDateTimeField
from .clients import Client


class BankConnection(BaseModel):
    id = AutoField()
    client = ForeignKeyField(Client, backref="connections", on_delete="CASCADE")
    institution_id = CharField(max_length=64)
    institution_name = CharField(max_length=200)
    status = CharField(max_length=16, default="active")  # active|needs_reconnect|disconnected
    last_error = CharField(max_length=300, null=True)
    created_at = UTCDateTimeField(default=clock.now)
    updated_at = UTCDateTimeField(default=clock.now)
    # The provider's side (core/banking/banks.py): which provider, its item, the item's access
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
    """One transaction, kept in step with the provider (`core.banking.bank_sync`). `amount_cents`
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
    came again. A record only: every delivery is applied (`core.banking.provider_events`)."""

    digest = CharField(max_length=64, primary_key=True)
    provider = CharField(max_length=16)
    kind = CharField(max_length=80)
    item_id = CharField(max_length=100, null=True)
    received_at = UTCDateTimeField(default=clock.now)
    repeats = IntegerField(default=0)
