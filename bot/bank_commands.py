"""`/ledgersync accounts|transactions|api-tokens|auto-reconnect`: parse, call core,
pick a view (bank_views.py). No Slack I/O here.

- `accounts <client>` — the client's banks, their health and accounts (staff, support);
- `transactions <client> [account] [since]` — newest first, a page at a time with
  *Show more* (staff): `account` is its last digits or name (`checking`, `0000`,
  `account:"Ally savings"`), `since` a date (`2026-11-01`) or `30d`;
- `api-tokens [revoke <#>]` — the firm's API tokens (admins);
- `auto-reconnect [on|off]` — automatic reconnect invites (admins change it).
"""

from __future__ import annotations

import re

from bot.ids import record_id
from core.banking import bank_data, reconnects
from core.firms import access, api_tokens
from core.firms.access import Actor
from core.invitations import clients
from core.platform import clock
from core.platform.errors import Ambiguous, InvalidInput, NotFound
from core.records import Client, Firm

from . import bank_views, parse

PAGE = 20
SINCE = re.compile(r"^(?:since[:=])?([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,4}d)$", re.IGNORECASE)
ACCOUNT = re.compile(r"^account[:=](.+)$", re.IGNORECASE)


def show_accounts(command: parse.Command, actor: Actor, meta) -> dict:
    actor.require("accounts")
    firm = actor.firm_for(command.firm)
    client = _one_client(firm, command.words, command.name)
    access.looked_up(actor, firm, f"accounts {client.name}")
    return bank_views.accounts(client, bank_data.connections_with_accounts(client))


def show_transactions(command: parse.Command, actor: Actor, meta) -> dict:
    actor.require("transactions")
    firm = actor.firm_for(command.firm)
    words, since, account_text = _options(command.words)
    if not words:
        raise InvalidInput("Which client? `/ledgersync transactions <client> [account] [since]`")
    try:
        client, rest = _client_and_rest(firm, words)
    except Ambiguous as many:
        more = {"cmd": "transactions", "since": since and since.isoformat(),
                "account_text": account_text}
        return bank_views.pick(str(many), many.candidates, more)
    account_text = account_text or " ".join(rest) or None
    account = bank_data.find_account(client, account_text) if account_text else None
    return _page(client, account, since, None)


def _page(client: Client, account, since, cursor: str | None) -> dict:
    page = bank_data.transactions(client=client, account=account, since=since, cursor=cursor,
                                  limit=PAGE)
    more = {"cmd": "transactions", "client": client.id,
            "account": account.id if account else None,
            "since": since.isoformat() if since else None}
    return bank_views.transactions(client, page, account=account, since=since, more=more)


def more(value: dict, actor: Actor) -> dict:
    """*Show more* (or *Pick* among several clients): the next page, checked again."""
    actor.require("transactions")
    firm = actor.firm_for(None)
    client = actor.client(firm, record_id(value.get("client")))
    since = _since(value.get("since"))
    account = None
    if value.get("account") is not None:
        account = bank_data.account(firm, record_id(value.get("account")))
        if account.connection.client_id != client.id:
            raise NotFound("That account does not exist")
    elif value.get("account_text"):
        account = bank_data.find_account(client, str(value["account_text"])[:100])
    return _page(client, account, since, value.get("cursor") or None)


def _since(text):
    return bank_data.since_date(str(text), clock.now().date()) if text else None


def _options(words: list[str]) -> tuple[list[str], object, str | None]:
    """The words left for the client (and account), the `since` date, an `account:`."""
    kept, since, account = [], None, None
    for word in words:
        if SINCE.match(word):
            since = bank_data.since_date(word, clock.now().date())
        elif ACCOUNT.match(word):
            account = ACCOUNT.match(word).group(1)
        else:
            kept.append(word)
    return kept, since, account


def _client_and_rest(firm: Firm, words: list[str]) -> tuple[Client, list[str]]:
    """The client named by the most leading words; the words after it (an account)."""
    for cut in range(len(words), 0, -1):
        try:
            return clients.find(firm, " ".join(words[:cut])), words[cut:]
        except NotFound:
            if cut == 1:
                raise
    raise NotFound("No client named")  # (no words: checked by the caller)


def _one_client(firm: Firm, words: list[str], name: str) -> Client:
    if not words:
        raise InvalidInput(f"Which client? `/ledgersync {name} <name, phone or email>`")
    return clients.find(firm, " ".join(words))


def api_tokens_command(command: parse.Command, actor: Actor, meta) -> dict:
    actor.require("api_tokens")
    firm = actor.firm
    if command.words[:1] and command.words[0].lower() == "revoke":
        if len(command.words) < 2:
            raise InvalidInput("Which token? `/ledgersync api-tokens revoke <#>`")
        token = api_tokens.revoke(firm, record_id(command.words[1]), by=actor.staff,
                                  actor=actor.label)
        return bank_views.token_revoked(token)
    return bank_views.tokens(firm, api_tokens.listed(firm))


def auto_reconnect(command: parse.Command, actor: Actor, meta) -> dict:
    actor.require("accounts")
    firm = actor.firm_for(command.firm)
    wanted = (command.words[:1] or [""])[0].lower()
    if wanted not in {"on", "off"}:
        return bank_views.auto_reconnect(firm.auto_reconnect_invites, changed=False)
    actor.require("auto_reconnect")
    reconnects.set_automatic(firm, wanted == "on", actor=actor.label)
    return bank_views.auto_reconnect(wanted == "on", changed=True)
