"""Banks: the institutions a client can pick, and the provider port that links and
repairs connections and reads their accounts and transactions.

Two kinds of provider sit behind the port (`BANK_PROVIDER`):
- a **form** provider takes the bank login on our own page (`link`, `submit_code`);
  the embedded sandbox is one;
- a **hosted** provider runs the bank login on its own pages (`start_link`, then
  `link_outcome` and `exchange`): Plaid's Hosted Link (`web/plaid/provider.py`).
Both give an `Item`: the provider's id for the linked login and its access token,
which core seals before storing. Then `accounts` and `sync` (cursor-paged changes, as
Plaid's /transactions/sync) read the data.

The embedded provider is a sandbox like the aggregators' own: credentials decide
what happens, so every path can be tried by hand and in tests:

| username    | password    | result                                  |
|-------------|-------------|-----------------------------------------|
| user_good   | pass_good   | connected                               |
| user_mfa    | pass_good   | asks for a one-time code (1234 passes)  |
| anything else               | wrong username or password          |

A sandbox connection has a checking and a savings account and a deterministic set
of transactions (`SandboxProvider.day`): the same connection always shows the same
ones, and each day adds that day's.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Protocol

from core import ports
from core.platform import clock
from core.platform.config import Settings, settings
from core.platform.errors import ConfigError, LedgerSyncError, Refused
from core.platform.i18n import N_
from core.platform.names import name_key


@dataclass(frozen=True)
class Institution:
    id: str
    name: str


@dataclass(frozen=True)
class Item:
    """A linked bank login at the provider: its id, and the access token that reads it
    (a credential: sealed before it is stored, never logged)."""

    item_id: str
    access_token: str = field(repr=False)
    institution_id: str | None = None
    institution_name: str | None = None


@dataclass(frozen=True)
class LinkResult:
    """What a form provider made of a login or a code. `message` is what the client
    reads: a message of the catalogue (`N_`), whose one field is `%(bank)s`, the
    institution's name — the page shows it translated into the client's language."""

    status: str  # connected | needs_code | failed
    message: str = ""
    challenge: str | None = None  # for needs_code: hand back with the code
    item: Item | None = None  # for connected


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    mask: str | None = None
    type: str = "depository"
    subtype: str | None = None
    official_name: str | None = None
    currency: str = "USD"
    balance: Decimal | None = None  # current balance


@dataclass(frozen=True)
class Txn:
    """A transaction as the provider gives it. `amount` keeps Plaid's sign: positive
    is money out of the account."""

    id: str
    account_id: str
    date: date
    name: str
    amount: Decimal
    merchant: str | None = None
    category: str | None = None
    currency: str = "USD"
    pending: bool = False


@dataclass(frozen=True)
class SyncPage:
    """One page of changes after a cursor (as /transactions/sync gives them)."""

    added: list[Txn]
    modified: list[Txn]
    removed: list[str]  # transaction ids
    accounts: list[Account]
    next_cursor: str
    has_more: bool


@dataclass(frozen=True)
class LinkRequest:
    """What a hosted provider needs to open its link pages for one client."""

    client_user_id: str  # stable and opaque: never a name, phone or email
    firm_name: str
    completion_url: str  # where the provider sends the client's browser back
    webhook_url: str
    access_token: str | None = field(default=None, repr=False)  # update mode: restore
    language: str = "en"  # the client's (core.platform.i18n.of_client): the provider's pages in it


@dataclass(frozen=True)
class HostedLink:
    url: str
    token: str = field(repr=False)  # the provider's link token (sealed when stored)
    expires_at: datetime | None = None


@dataclass(frozen=True)
class AddedItem:
    public_token: str = field(repr=False)
    institution_id: str | None = None
    institution_name: str | None = None


@dataclass(frozen=True)
class LinkOutcome:
    status: str  # pending | success | exited
    items: tuple[AddedItem, ...] = ()
    message: str = ""


class ProviderError(LedgerSyncError):
    """The provider refused or failed. `code` is its error code (ITEM_LOGIN_REQUIRED,
    TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION…); `transient`: worth trying later."""

    def __init__(self, message: str, code: str = "", *, transient: bool = False):
        super().__init__(message)
        self.code, self.transient = code, transient


LOGIN_REQUIRED = "ITEM_LOGIN_REQUIRED"


class BankProvider(ports.BankProvider, Protocol):
    name: str  # sandbox | plaid | …
    flow: str  # form (our page takes the login) | hosted (the provider's pages do)

    def sandbox_hint(self) -> str | None: ...

    def link(self, institution: Institution, username: str, password: str) -> LinkResult: ...

    def submit_code(self, institution: Institution, challenge: str, code: str) -> LinkResult: ...

    def start_link(self, request: LinkRequest) -> HostedLink: ...

    def link_outcome(self, link_token: str) -> LinkOutcome: ...

    def exchange(self, public_token: str) -> Item: ...

    def accounts(self, access_token: str) -> list[Account]: ...

    def sync(self, access_token: str, cursor: str | None) -> SyncPage: ...


@cache
def institutions() -> tuple[Institution, ...]:
    path = Path(__file__).with_name("data") / "institutions.json"
    return tuple(Institution(**row) for row in json.loads(path.read_text()))


def institution(institution_id: str) -> Institution | None:
    return next((i for i in institutions() if i.id == institution_id), None)


def by_name(name: str) -> Institution:
    """The institution for a pre-selected bank name (unknown names are kept as typed)."""
    key = name_key(name)
    found = next((i for i in institutions() if name_key(i.name) == key), None)
    return found or Institution(id="custom-" + "-".join(key.split())[:50], name=name)


def search(text: str, limit: int = 20) -> list[Institution]:
    key = name_key(text)
    if not key:
        return []
    starts = [i for i in institutions() if name_key(i.name).startswith(key)]
    contains = [i for i in institutions() if key in name_key(i.name) and i not in starts]
    return (starts + contains)[:limit]


def provider() -> BankProvider:
    """The provider the settings name, as the `bank_provider` port builds it (it knows
    the drivers; without it only the sandbox and `module:Class` are known)."""
    return (ports.current().bank_provider or load)(settings())


def is_hosted() -> bool:
    """Whether the provider runs the bank login on its own pages (a provider that
    doesn't say is a form provider, as the sandbox)."""
    return getattr(provider(), "flow", "form") == "hosted"


def provider_name() -> str:
    return getattr(provider(), "name", "sandbox")


def load(config: Settings) -> BankProvider:
    name = config.bank_provider_name
    if name == "sandbox":
        return _load("core.banking.banks:SandboxProvider")
    if ":" in name:
        return _load(name)
    raise ConfigError(f"BANK_PROVIDER '{name[:40]}' is not known here: sandbox, plaid "
                      "or module:Class")


@cache
def _load(path: str) -> BankProvider:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)()


class SandboxProvider:
    """The embedded provider (see the module's docstring)."""

    name = "sandbox"
    flow = "form"
    CODE = "1234"
    HINT = N_("Sandbox: user_good / pass_good, or user_mfa for a code (1234).")
    # What the client reads (LinkResult.message): the catalogue's words, `%(bank)s` filled
    # in and translated on the page.
    SENT_CODE = N_("%(bank)s sent a code to your phone.")
    REFUSED = N_("%(bank)s did not accept that username or password. Check them and try "
                 "again.")
    CODE_EXPIRED = N_("That code has expired; start again.")
    WRONG_CODE = N_("That code is not right; try again.")
    HISTORY_DAYS = 45  # what the first sync brings
    PAGE = 25  # transactions a sync page holds (so a first sync takes pages)

    def sandbox_hint(self) -> str | None:
        return self.HINT

    def link(self, institution: Institution, username: str, password: str) -> LinkResult:
        if password == "pass_good" and username == "user_good":
            return LinkResult("connected", item=self._new_item(institution))
        if password == "pass_good" and username == "user_mfa":
            return LinkResult("needs_code", self.SENT_CODE, challenge=self._sign(institution.id))
        return LinkResult("failed", self.REFUSED)

    def submit_code(self, institution: Institution, challenge: str, code: str) -> LinkResult:
        expected = self._sign(institution.id).encode()
        if not hmac.compare_digest((challenge or "").encode(), expected):
            return LinkResult("failed", self.CODE_EXPIRED)
        if (code or "").strip() != self.CODE:
            return LinkResult("needs_code", self.WRONG_CODE, challenge)
        return LinkResult("connected", item=self._new_item(institution))

    @staticmethod
    def _new_item(institution: Institution) -> Item:
        token = f"access-sandbox-{secrets.token_hex(16)}"
        return Item(f"sbx-{_hex(token)[:20]}", token, institution.id, institution.name)

    # --- hosted flow: not this provider's ------------------------------------------------

    def start_link(self, request: LinkRequest) -> HostedLink:
        raise Refused("The sandbox takes the bank login on our own page")

    def link_outcome(self, link_token: str) -> LinkOutcome:
        raise Refused("The sandbox takes the bank login on our own page")

    def exchange(self, public_token: str) -> Item:
        raise Refused("The sandbox takes the bank login on our own page")

    # --- data: deterministic per connection ----------------------------------------------

    def accounts(self, access_token: str) -> list[Account]:
        seed = _hex(access_token)
        return [Account(f"{seed[:12]}-chk", "Checking", str(int(seed[:6], 16) % 10000).zfill(4),
                        "depository", "checking", balance=_money(seed, 1500, 9000)),
                Account(f"{seed[:12]}-sav", "Savings", str(int(seed[6:12], 16) % 10000).zfill(4),
                        "depository", "savings", balance=_money(seed[8:], 5000, 40000))]

    def sync(self, access_token: str, cursor: str | None) -> SyncPage:
        """Every day after the cursor's up to today, PAGE transactions a page. The
        cursor: `<last day done>` between syncs, `<from>..<to>+<offset>` inside one."""
        start, end, offset = self._window(cursor)
        due = [t for d in _days(start, end) for t in self.day(access_token, d)]
        page = due[offset:offset + self.PAGE]
        more = offset + self.PAGE < len(due)
        following = f"{start}..{end}+{offset + self.PAGE}" if more else end.isoformat()
        return SyncPage(page, [], [], self.accounts(access_token), following, more)

    def _window(self, cursor: str | None) -> tuple[date, date, int]:
        today = clock.now().date()
        if not cursor:
            return today - timedelta(days=self.HISTORY_DAYS), today, 0
        try:
            if ".." in cursor:
                first, rest = cursor.split("..")
                last, offset = rest.split("+")
                return date.fromisoformat(first), date.fromisoformat(last), int(offset)
            return date.fromisoformat(cursor), today, 0
        except ValueError:
            raise ProviderError("That sync cursor is not the sandbox's", "INVALID_CURSOR") \
                from None

    def day(self, access_token: str, day: date) -> list[Txn]:
        """The connection's transactions of one day (the same every time it is asked)."""
        seed = _hex(access_token)
        checking, savings = f"{seed[:12]}-chk", f"{seed[:12]}-sav"
        found = []
        if day.day in (1, 15):
            found.append(Txn(f"{seed[:8]}-{day:%Y%m%d}-pay", checking, day, "Payroll deposit",
                             Decimal("-2450.00"), "Acme Payroll", "INCOME"))
        if day.day == 1:
            found.append(Txn(f"{seed[:8]}-{day:%Y%m%d}-int", savings, day, "Interest paid",
                             Decimal("-3.17"), None, "INCOME"))
        roll = _hex(f"{seed}:{day.isoformat()}")
        if int(roll[:2], 16) % 10 < 7:  # most days, one card purchase
            merchant, category = _MERCHANTS[int(roll[2:4], 16) % len(_MERCHANTS)]
            amount = _money(roll[4:], 300, 12000)
            found.append(Txn(f"{seed[:8]}-{day:%Y%m%d}-buy", checking, day,
                             f"{merchant.upper()} #{int(roll[8:12], 16) % 900 + 100}", amount,
                             merchant, category))
        return found

    @staticmethod
    def _sign(institution_id: str) -> str:
        key = settings().secret_key.encode()
        return hmac.new(key, f"sandbox-mfa:{institution_id}".encode(), hashlib.sha256).hexdigest()


_MERCHANTS = [("Starbucks", "FOOD_AND_DRINK"), ("Shell", "TRANSPORTATION"),
              ("Whole Foods", "FOOD_AND_DRINK"), ("Staples", "GENERAL_MERCHANDISE"),
              ("Uber", "TRANSPORTATION"), ("Comcast", "RENT_AND_UTILITIES"),
              ("Amazon", "GENERAL_MERCHANDISE"), ("Delta Air Lines", "TRAVEL")]


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _money(hexdigits: str, low_cents: int, high_cents: int) -> Decimal:
    cents = low_cents + int(hexdigits[:8], 16) % (high_cents - low_cents)
    return Decimal(cents) / 100


def _days(after: date, through: date) -> list[date]:
    return [after + timedelta(days=n) for n in range(1, (through - after).days + 1)]
