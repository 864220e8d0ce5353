"""Block Kit for bank data: a client's accounts, their transactions a page at a time,
the firm's API tokens, automatic reconnect invites. Builders only: every piece of
user or bank text goes through `esc` (views.py), nothing here touches the database
beyond the rows it is handed."""

from __future__ import annotations

import json
from datetime import date

from bot.ids import ActionId
from bot.views import button, clip, context, esc, message, section, when
from core.banking import bank_data
from core.messaging.quiet_hours import zone_for
from core.platform import clock
from core.records import ApiToken, BankAccount, BankConnection, BankTransaction, Client, Firm

HEALTH = {"active": ":large_green_circle: working", "needs_reconnect": ":red_circle: needs "
          "restoring", "disconnected": ":white_circle: disconnected"}
PER_SECTION = 10


def accounts(client: Client, rows: list[tuple[BankConnection, list[BankAccount]]]) -> dict:
    name = esc(client.name)
    if not rows:
        return message(f"{client.name}: no bank connected", [section(
            f"*{name}* has no bank connected yet. Invite them: "
            f"`/ledgersync invite {name}`")])
    count = sum(len(found) for _, found in rows)
    blocks = [section(f"*{name}* — {len(rows)} bank{'s' if len(rows) != 1 else ''}, "
                      f"{count} account{'s' if count != 1 else ''}")]
    for connection, found in rows[:20]:
        blocks.append(_connection_block(client, connection, found))
    blocks.append(context(f"Transactions: `/ledgersync transactions {name} [account] [since]`"))
    return message(f"{client.name}'s accounts", blocks)


def _connection_block(client: Client, connection: BankConnection, found: list) -> dict:
    synced = (f" · synced {when(connection.synced_at, zone_for(client))}"
              if connection.synced_at else " · not synced yet")
    head = (f"*{clip(connection.institution_name, 200)}* · "
            f"{HEALTH.get(connection.status, esc(connection.status))}{synced}")
    lines = [f"• {_account_line(a)}" for a in found[:15]] or ["• no accounts read yet"]
    block = section("\n".join([head, *lines]))
    if connection.status == "needs_reconnect":
        block["accessory"] = button("Ask to reconnect", ActionId.RECONNECT, client.id)
    return block


def _account_line(account: BankAccount) -> str:
    mask = f" ••{esc(account.mask)}" if account.mask else ""
    kind = esc(account.subtype or account.type)
    balance = bank_data.money(account.balance_cents, account.currency, signed=False)
    return f"{clip(account.name, 100)}{mask} · {kind} · {balance}"


def transactions(client: Client, page: bank_data.Page, *, account: BankAccount | None,
                 since: date | None, more: dict) -> dict:
    scope = esc(bank_data.label(account)) if account else "all accounts"
    after = f", since {_day(since)}" if since else ""
    head = f"*{esc(client.name)}* — {scope}{after}"
    if not page.rows:
        return message(f"{client.name}: no transactions", [section(
            f"{head}\nNo transactions{' yet' if not since else ''}.")])
    blocks = [section(head)]
    lines = [_txn_line(t, show_account=account is None) for t in page.rows]
    for start in range(0, len(lines), PER_SECTION):
        blocks.append(section("\n".join(lines[start:start + PER_SECTION])))
    if page.next_cursor:
        value = json.dumps({**more, "cursor": page.next_cursor})
        blocks.append({"type": "actions", "elements": [
            button("Show more", ActionId.MORE, value)]})
    blocks.append(context("Amounts: − money out, + money in. Export: "
                          "`ledgersync transactions <client> --csv`"))
    return message(f"{client.name}'s transactions", blocks)


def _txn_line(txn: BankTransaction, *, show_account: bool) -> str:
    amount = bank_data.money(txn.amount_cents, txn.currency)
    words = clip(txn.merchant_name or txn.name, 80)
    where = f" · {esc(bank_data.label(txn.account))}" if show_account else ""
    pending = " · _pending_" if txn.pending else ""
    return f"`{_day(txn.posted_on)}` {words} · *{amount}*{where}{pending}"


def _day(day: date) -> str:
    """'Mon 23 Nov': a posted date is a day, the same in every reader's zone."""
    this_year = clock.now().year
    return f"{day:%a} {day.day} {day:%b}" + (f" {day.year}" if day.year != this_year else "")


def pick(text: str, rows: list[Client], more: dict) -> dict:
    """Several clients match: a button each, that runs the command for that one."""
    blocks = [section(f":mag: {esc(text)}")]
    for client in rows[:20]:
        value = json.dumps({**more, "client": client.id})
        blocks.append({**section(f"*{esc(client.name)}*"),
                       "accessory": button("Pick", ActionId.MORE, value)})
    return message(text, blocks)


def tokens(firm: Firm, rows: list[ApiToken]) -> dict:
    tz = clock.zone(firm.timezone)
    if not rows:
        return message("No API tokens", [section(
            f"*{esc(firm.name)}* has no API tokens. A connected app makes one with a staff "
            "member's email and password: `POST /api/v1/tokens`.")])
    lines = [_token_line(t, tz) for t in rows[:40]]
    blocks = [section(f"*{esc(firm.name)}* — {len(rows)} API token"
                      f"{'s' if len(rows) != 1 else ''}")]
    for start in range(0, len(lines), PER_SECTION):
        blocks.append(section("\n".join(lines[start:start + PER_SECTION])))
    blocks.append(context("Revoke one: `/ledgersync api-tokens revoke <#>`"))
    return message(f"{len(rows)} API tokens", blocks)


def _token_line(token: ApiToken, tz) -> str:
    label = f" “{clip(token.label, 60)}”" if token.label else ""
    state = (f":no_entry: revoked {when(token.revoked_at, tz)}" if token.revoked_at else
             f"last used {when(token.last_used_at, tz)}" if token.last_used_at else
             "never used")
    return (f"`#{token.id}` `{esc(token.hint)}…`{label} · {esc(token.staff.email)} · "
            f"made {when(token.created_at, tz)} · {state}")


def token_revoked(token: ApiToken) -> dict:
    return message(f"API token #{token.id} revoked", [section(
        f":no_entry: API token `#{token.id}` ({esc(token.staff.email)}) is revoked: "
        "requests with it are refused from now on.")])


def auto_reconnect(on: bool, changed: bool) -> dict:
    state = "on" if on else "off"
    what = ("When a client's bank connection needs restoring, they get a reconnect invite by "
            "themselves (once a break; a text waits for their morning)." if on else
            "When a client's bank connection needs restoring, the firm is told and asks them "
            "with *Ask to reconnect*.")
    verb = "are now" if changed else "are"
    return message(f"Automatic reconnect invites {verb} {state}", [section(
        f":arrows_counterclockwise: Automatic reconnect invites {verb} *{state}*. {what}"),
        context("Change: `/ledgersync auto-reconnect on` or `off` (admins)")])
