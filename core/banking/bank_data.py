"""Reading a firm's bank data: clients' accounts and transactions, for Slack, the
command line and the read API — always within one firm (another firm's client,
account or transaction is NotFound, exactly as one that doesn't exist).

Pages are keyset pages with an opaque cursor (the last row's sort key), so paging is
stable while transactions arrive: a row that was there when paging began comes
exactly once, whatever is added meanwhile. Transactions come newest first (posted
date, then id); clients by id.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from dataclasses import dataclass
from datetime import date, timedelta

from peewee import JOIN

from core.platform import names
from core.platform.errors import InvalidInput, NotFound
from core.records import BankAccount, BankConnection, BankTransaction, Client, Firm

MAX_PAGE = 500
# Cursors and `since`, spelled out in ASCII: `str.isdigit()` and `\d` also take '²' and
# '٣', which `int()` and `date.fromisoformat()` then refuse (or read). 18 digits at most:
# any row id, and nothing a database can't compare.
CLIENT_CURSOR = re.compile(r"([0-9]{1,18})")
TRANSACTION_CURSOR = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})\|([0-9]{1,18})")
DAYS = re.compile(r"([0-9]{1,4})d")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
SYMBOLS = {"USD": "$", "CAD": "CA$", "EUR": "€", "GBP": "£"}


@dataclass(frozen=True)
class Page:
    rows: list
    next_cursor: str | None  # None: this was the last page


# --- accounts -----------------------------------------------------------------------


def connections_with_accounts(client: Client) -> list[tuple[BankConnection, list[BankAccount]]]:
    rows = (BankConnection.select().where(BankConnection.client == client)
            .order_by(BankConnection.institution_name, BankConnection.id))
    return [(c, accounts_of_connection(c)) for c in rows]


def accounts_of_connection(connection: BankConnection) -> list[BankAccount]:
    return list(BankAccount.select().where(BankAccount.connection == connection)
                .order_by(BankAccount.name, BankAccount.id))


def accounts(client: Client) -> list[BankAccount]:
    return list(BankAccount.select(BankAccount, BankConnection).join(BankConnection)
                .where(BankConnection.client == client)
                .order_by(BankConnection.institution_name, BankAccount.name, BankAccount.id))


def account(firm: Firm, account_id: int) -> BankAccount:
    found = (BankAccount.select(BankAccount, BankConnection, Client)
             .join(BankConnection).join(Client)
             .where(BankAccount.id == account_id, Client.firm == firm).first())
    if found is None:
        raise NotFound("No such account")
    return found


def find_account(client: Client, text: str) -> BankAccount:
    """One of the client's accounts by its last digits, its name or its bank's name."""
    key = names.name_key(re.sub(r"^(?:[•.*#]+|x+(?=\d))", "", text.strip()))
    mine = accounts(client)
    matches = [a for a in mine if key and (a.mask or "") == key] or [
        a for a in mine if key and key in names.name_key(
            f"{a.connection.institution_name} {a.name} {a.official_name or ''}")]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        have = ", ".join(label(a) for a in mine[:10]) or "none yet"
        raise NotFound(f"{client.name} has no account matching '{text[:40]}'; their "
                       f"accounts: {have}")
    listed = ", ".join(label(a) for a in matches[:5])
    raise InvalidInput(f"'{text[:40]}' matches {len(matches)} accounts: {listed}; "
                       "give the last four digits")


def label(account: BankAccount) -> str:
    """'Chase Checking ••0000'."""
    mask = f" ••{account.mask}" if account.mask else ""
    return f"{account.connection.institution_name} {account.name}{mask}"


# --- clients and transactions, a page at a time --------------------------------------


def clients_page(firm: Firm, cursor: str | None = None, limit: int = 100) -> Page:
    after = int(_decode(cursor, CLIENT_CURSOR)[0]) if cursor else 0
    rows = list(Client.select().where(Client.firm == firm, Client.id > after)
                .order_by(Client.id).limit(_limit(limit) + 1))
    return _page(rows, limit, lambda c: [str(c.id)])


def transactions(*, client: Client | None = None, account: BankAccount | None = None,
                 since: date | None = None, cursor: str | None = None,
                 limit: int = 20) -> Page:
    """A client's (or one account's) transactions, newest first, after `cursor`."""
    query = (BankTransaction.select(BankTransaction, BankAccount, BankConnection)
             .join(BankAccount).join(BankConnection, JOIN.INNER,
                                     on=(BankAccount.connection == BankConnection.id)))
    if account is not None:
        query = query.where(BankTransaction.account == account)
    if client is not None:
        query = query.where(BankConnection.client == client)
    if since is not None:
        query = query.where(BankTransaction.posted_on >= since)
    if cursor:
        day, last_id = _decode(cursor, TRANSACTION_CURSOR)
        on = _date(day)
        query = query.where((BankTransaction.posted_on < on) | (
            (BankTransaction.posted_on == on) & (BankTransaction.id < int(last_id))))
    rows = list(query.order_by(BankTransaction.posted_on.desc(), BankTransaction.id.desc())
                .limit(_limit(limit) + 1))
    return _page(rows, limit, lambda t: [t.posted_on.isoformat(), str(t.id)])


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit is from 1 to {MAX_PAGE}", field="limit")
    return limit


def _page(rows: list, limit: int, key) -> Page:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, _encode(key(rows[-1])) if more and rows else None)


def _encode(parts: list[str]) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def _decode(cursor: str, shape: re.Pattern) -> tuple[str, ...]:
    """The parts of one of our cursors; InvalidInput (about `cursor`) for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    parts = shape.fullmatch(text)
    if parts is None:
        raise InvalidInput("That cursor is not one of ours", field="cursor")
    return parts.groups()


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput("That cursor is not one of ours", field="cursor") from None


def since_date(text: str, today: date) -> date:
    """`2026-11-01`, or `30d` (the last 30 days); ASCII digits only."""
    text = text.strip().lower().removeprefix("since:").removeprefix("since=")
    days = DAYS.fullmatch(text)
    if days and 0 < int(days.group(1)) <= 3660:
        return today - timedelta(days=int(days.group(1)))
    if ISO_DATE.fullmatch(text):
        with contextlib.suppress(ValueError):  # 2026-02-30
            return date.fromisoformat(text)
    raise InvalidInput(f"'{text[:20]}' is not a date: use 2026-11-01, or 30d", field="since")


# --- words --------------------------------------------------------------------------


def money(cents: int | None, currency: str = "USD", *, signed: bool = True) -> str:
    """'−$1,234.56' (money out), '+$2,450.00' (money in), '$110.00' unsigned."""
    if cents is None:
        return "—"
    symbol = SYMBOLS.get(currency)
    number = f"{abs(cents) // 100:,}.{abs(cents) % 100:02d}"
    text = f"{symbol}{number}" if symbol else f"{number} {currency}"
    if not signed:
        return ("−" if cents < 0 else "") + text
    return ("−" if cents < 0 else "+") + text


def decimal_text(cents: int) -> str:
    """'-12.34': the amount as a plain decimal (the API's and CSV's)."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"
