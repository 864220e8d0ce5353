"""Accounts and transactions, kept in step with the provider.

A sync asks the provider for every change after the connection's stored cursor
(Plaid's /transactions/sync), page after page until it says there is no more, then
applies all of it — added, modified, removed, the accounts, the new cursor — in one
transaction. The cursor is moved with a conditional update from the one the sync
started at, so two syncs of one connection at once (a webhook and the daily sweep)
apply the changes once: the second finds the cursor moved and changes nothing. A
change in the provider's data while paging (TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION)
starts the pages again from the first cursor, as Plaid asks.

When it runs is `core.banking.connections`' to decide (`sync_soon`): after a connection is
added or restored, when the provider says there are updates (a webhook), and once a
day for every working connection (the sweep). A provider that answers that the bank
wants the login again (ITEM_LOGIN_REQUIRED) gives a `broken` report: the connection
needs restoring even if its webhook was lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from core.platform import clock, tokens
from core.platform.db import database
from core.records import BankAccount, BankConnection, BankTransaction

from . import banks

log = logging.getLogger(__name__)
MUTATED = "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION"
MAX_RESTARTS = 3
MAX_PAGES = 500  # a runaway provider can't keep a worker forever
CHUNK = 200

@dataclass
class Report:
    result: str  # synced | skipped | raced | broken
    added: int = 0
    modified: int = 0
    removed: int = 0
    pages: int = 0
    reason: str = ""

    def __str__(self) -> str:
        if self.result != "synced":
            return f"{self.result} {self.reason}".strip()
        return (f"synced: {self.added} added, {self.modified} changed, {self.removed} removed "
                f"({self.pages} page{'s' if self.pages != 1 else ''})")


@dataclass
class Changes:
    added: list[banks.Txn] = field(default_factory=list)
    modified: list[banks.Txn] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    accounts: list[banks.Account] = field(default_factory=list)
    cursor: str = ""
    pages: int = 0


def sync(connection_id: int) -> Report:
    connection = BankConnection.get_or_none(BankConnection.id == connection_id)
    why_not = _cannot_sync(connection)
    if why_not:
        return Report("skipped", reason=why_not)
    access = tokens.unseal(connection.access_sealed)
    if access is None:
        return Report("skipped", reason="its access token can't be read (the keys changed)")
    start = connection.sync_cursor
    try:
        changes = fetch(banks.provider(), access, start)
    except banks.ProviderError as problem:
        if problem.code == banks.LOGIN_REQUIRED:
            return Report("broken", reason=str(problem))
        raise
    return apply(connection, start, changes)


def _cannot_sync(connection: BankConnection | None) -> str:
    if connection is None:
        return "no such connection"
    if connection.status != "active":
        return f"it is {connection.status.replace('_', ' ')}"
    if not connection.access_sealed:
        return "it has no access token"
    if connection.provider != banks.provider_name():
        return f"it was made with the {connection.provider} provider"
    return ""


def fetch(provider: banks.BankProvider, access: str, start: str | None) -> Changes:
    """Every page after `start` until the provider says there is no more; from `start`
    again when the data changed while paging."""
    for _ in range(MAX_RESTARTS):
        try:
            return _pages(provider, access, start)
        except banks.ProviderError as problem:
            if problem.code != MUTATED:
                raise
    raise banks.ProviderError("The bank's data kept changing; the next sync will try again",
                              MUTATED, transient=True)


def _pages(provider: banks.BankProvider, access: str, start: str | None) -> Changes:
    changes, cursor = Changes(), start
    while changes.pages < MAX_PAGES:
        page = provider.sync(access, cursor)
        changes.added += page.added
        changes.modified += page.modified
        changes.removed += page.removed
        changes.accounts = page.accounts or changes.accounts
        changes.pages += 1
        cursor = page.next_cursor
        if not page.has_more:
            break
    changes.cursor = cursor or ""
    return changes


def apply(connection: BankConnection, start: str | None, changes: Changes) -> Report:
    """All of a sync's changes and its new cursor, or nothing (another sync won)."""
    with database.atomic():
        moved = BankConnection.update(sync_cursor=changes.cursor, synced_at=clock.now()).where(
            BankConnection.id == connection.id, _cursor_is(start)).execute()
        if not moved:
            return Report("raced", reason="another sync applied these changes")
        accounts = keep_accounts(connection, changes.accounts)
        added = _upsert(connection, accounts, changes.added)
        modified = _upsert(connection, accounts, changes.modified)
        removed = _remove(connection, changes.removed)
    return Report("synced", added, modified, removed, changes.pages)


def _cursor_is(start: str | None):
    if start is None:
        return BankConnection.sync_cursor.is_null()
    return BankConnection.sync_cursor == start


def keep_accounts(connection: BankConnection, accounts: list[banks.Account]) -> dict[str, int]:
    """The provider's accounts, added or brought up to date; every account id of the
    connection → our id."""
    now = clock.now()
    for account in accounts:
        (BankAccount.insert(connection=connection, provider_account_id=account.id,
                            updated_at=now, **_account_fields(account))
         .on_conflict(conflict_target=[BankAccount.connection, BankAccount.provider_account_id],
                      update={**_account_fields(account), "updated_at": now})
         .execute())
    rows = BankAccount.select(BankAccount.id, BankAccount.provider_account_id).where(
        BankAccount.connection == connection)
    return {row.provider_account_id: row.id for row in rows}


def _account_fields(account: banks.Account) -> dict:
    return {"name": account.name[:200], "official_name": (account.official_name or None),
            "mask": account.mask, "type": account.type[:20],
            "subtype": account.subtype and account.subtype[:40],
            "currency": (account.currency or "USD")[:3],
            "balance_cents": None if account.balance is None else cents(account.balance)}


def _upsert(connection: BankConnection, accounts: dict[str, int],
            txns: list[banks.Txn]) -> int:
    rows = [_row(connection, accounts[t.account_id], t) for t in txns if t.account_id in accounts]
    if len(rows) < len(txns):
        log.warning("connection %s: %d transactions for accounts it doesn't have",
                    connection.id, len(txns) - len(rows))
    target = [BankTransaction.connection, BankTransaction.provider_transaction_id]
    for start in range(0, len(rows), CHUNK):
        (BankTransaction.insert_many(rows[start:start + CHUNK])
         .on_conflict(conflict_target=target, preserve=_UPDATED).execute())
    return len(rows)


_UPDATED = [BankTransaction.account, BankTransaction.posted_on, BankTransaction.name,
            BankTransaction.merchant_name, BankTransaction.category, BankTransaction.amount_cents,
            BankTransaction.currency, BankTransaction.pending, BankTransaction.updated_at]


def _row(connection: BankConnection, account_id: int, txn: banks.Txn) -> dict:
    now = clock.now()
    return {"connection": connection.id, "account": account_id,
            "provider_transaction_id": txn.id[:100], "posted_on": txn.date,
            "name": (txn.name or "")[:300], "merchant_name": txn.merchant and txn.merchant[:200],
            "category": txn.category and txn.category[:100], "amount_cents": -cents(txn.amount),
            "currency": (txn.currency or "USD")[:3], "pending": bool(txn.pending),
            "created_at": now, "updated_at": now}


def _remove(connection: BankConnection, ids: list[str]) -> int:
    removed = 0
    for start in range(0, len(ids), CHUNK):
        removed += BankTransaction.delete().where(
            BankTransaction.connection == connection,
            BankTransaction.provider_transaction_id.in_(ids[start:start + CHUNK])).execute()
    return removed


def forget_data(connection: BankConnection) -> None:
    """A connection linked again with a new login: the old login's accounts and
    transactions go, the new one's come with the next sync (from the start)."""
    BankAccount.delete().where(BankAccount.connection == connection).execute()
    BankConnection.update(sync_cursor=None).where(BankConnection.id == connection.id).execute()


def cents(amount: Decimal | float | int) -> int:
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def readable(synced_before: datetime | None = None) -> list[int]:
    """Every working connection with a login to read (not synced since
    `synced_before`, when given)."""
    rows = BankConnection.select(BankConnection.id).where(
        BankConnection.status == "active", BankConnection.access_sealed.is_null(False))
    if synced_before is not None:
        rows = rows.where(BankConnection.synced_at.is_null()
                          | (BankConnection.synced_at <= synced_before))
    return [row.id for row in rows.order_by(BankConnection.id)]
