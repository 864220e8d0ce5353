"""Bank data on the command line: `ledgersync accounts`, `ledgersync transactions`
(both with `--csv` for a spreadsheet or another program), `ledgersync banks
sync|auto-reconnect`, and `ledgersync api-tokens list|revoke`."""

from __future__ import annotations

import csv
import sys

import click

from cli.common import current_firm
from core.banking import bank_data, banks, connections, reconnects
from core.firms import api_tokens
from core.invitations import clients, invites, links
from core.messaging.quiet_hours import zone_for
from core.platform import clock, tokens
from core.reports.status import local_text

HEALTH = {"active": "working", "needs_reconnect": "needs restoring",
          "disconnected": "disconnected"}
ACCOUNT_COLUMNS = ["client", "bank", "connection_status", "account_id", "account", "mask",
                   "type", "subtype", "currency", "balance", "synced_at"]
TXN_COLUMNS = ["id", "date", "client", "bank", "account", "mask", "name", "merchant",
               "category", "amount", "currency", "pending"]


def register(main: click.Group) -> None:
    for command in (accounts, transactions, banks_group, api_tokens_group):
        main.add_command(command)


def demo_connection(firm) -> None:
    """The demo's Acme Co has accepted its invite and connected Bank of America through
    the sandbox, so there are accounts and transactions to read at once."""
    if banks.is_hosted():
        return  # a real provider's login can't be made up
    acme = clients.find(firm, "Acme Co")
    sent = invites.send(acme, "email")
    links.accept(tokens.unseal(sent.invite.token_sealed))
    outcome = connections.add(acme, "bank-of-america", "user_good", "pass_good")
    connections.sync(outcome.connection.id)  # now, not when a worker comes


def _client(query: str):
    return clients.find(current_firm(), query)


@click.command()
@click.argument("client")
@click.option("--csv", "as_csv", is_flag=True, help="One row per account, as CSV.")
def accounts(client, as_csv):
    """CLIENT's banks, their health and their accounts."""
    found = _client(client)
    rows = bank_data.connections_with_accounts(found)
    if as_csv:
        _write_csv(ACCOUNT_COLUMNS, [_account_row(found, c, a) for c, found_accounts in rows
                                     for a in found_accounts])
        return
    if not rows:
        click.echo(f"{found.name} has no bank connected yet "
                   f"(ledgersync invite \"{found.name}\").")
    for connection, found_accounts in rows:
        synced = (f"synced {local_text(connection.synced_at, zone_for(found))}"
                  if connection.synced_at else "not synced yet")
        click.echo(f"{connection.institution_name} — {HEALTH.get(connection.status)}, {synced}")
        for account in found_accounts:
            click.echo(f"  {account.id:>5}  {_account_words(account)}")


def _account_words(account) -> str:
    mask = f" ••{account.mask}" if account.mask else ""
    balance = bank_data.money(account.balance_cents, account.currency, signed=False)
    return f"{account.name}{mask}  {account.subtype or account.type}  {balance}"


def _account_row(client, connection, account) -> list:
    balance = account.balance_cents
    return [client.name, connection.institution_name, connection.status, account.id,
            account.name, account.mask or "", account.type, account.subtype or "",
            account.currency, "" if balance is None else bank_data.decimal_text(balance),
            clock.as_utc(connection.synced_at).isoformat() if connection.synced_at else ""]


@click.command()
@click.argument("client")
@click.argument("account", required=False)
@click.option("--since", help="From this date (2026-11-01), or the last N days (30d).")
@click.option("--limit", type=click.IntRange(min=0),
              help="How many, newest first (0: all). Default 30; with --csv, all.")
@click.option("--csv", "as_csv", is_flag=True, help="As CSV (amounts: negative is money out).")
def transactions(client, account, since, limit, as_csv):
    """CLIENT's transactions, newest first.

    Of one ACCOUNT when given: its last digits or its name.
    """
    found = _client(client)
    chosen = bank_data.find_account(found, account) if account else None
    start = bank_data.since_date(since, clock.now().date()) if since else None
    wanted = limit if limit is not None else (0 if as_csv else 30)
    rows, more = _collect(found, chosen, start, wanted)
    if as_csv:
        _write_csv(TXN_COLUMNS, [_txn_row(found, t) for t in rows])
        return
    for txn in rows:
        click.echo(_txn_words(txn, show_account=chosen is None))
    total = f"{len(rows)} transaction{'s' if len(rows) != 1 else ''}"
    click.echo(f"{total}{'; more with --limit 0' if more else ''}. Amounts: − out, + in.")


def _collect(client, account, since, wanted: int):
    rows, cursor = [], None
    while True:
        page = bank_data.transactions(client=client, account=account, since=since,
                                      cursor=cursor, limit=bank_data.MAX_PAGE)
        rows += page.rows
        cursor = page.next_cursor
        if cursor is None or (wanted and len(rows) >= wanted):
            break
    more = bool(wanted and (len(rows) > wanted or cursor))
    return (rows[:wanted] if wanted else rows), more


def _txn_words(txn, *, show_account: bool) -> str:
    amount = bank_data.money(txn.amount_cents, txn.currency)
    where = f"  {bank_data.label(txn.account)}" if show_account else ""
    pending = "  (pending)" if txn.pending else ""
    return f"{txn.posted_on.isoformat()}  {amount:>13}  {txn.merchant_name or txn.name}" \
           f"{where}{pending}"


def _txn_row(client, txn) -> list:
    account = txn.account
    return [txn.id, txn.posted_on.isoformat(), client.name, account.connection.institution_name,
            account.name, account.mask or "", txn.name, txn.merchant_name or "",
            txn.category or "", bank_data.decimal_text(txn.amount_cents), txn.currency,
            "yes" if txn.pending else "no"]


def _write_csv(columns: list[str], rows: list[list]) -> None:
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(columns)
    out.writerows(rows)


# --- banks: sync now, automatic reconnect invites ------------------------------------------


@click.group("banks")
def banks_group():
    """Bank data: sync now; automatic reconnect invites."""


@banks_group.command("sync")
@click.argument("client", required=False)
def sync(client):
    """Sync bank connections now.

    CLIENT's, or every working connection without CLIENT.
    """
    from core.records import BankConnection

    if client:
        ids = [c.id for c in connections.for_client(_client(client)) if c.status == "active"]
    else:
        ids = [row.id for row in BankConnection.select(BankConnection.id).where(
            BankConnection.status == "active")]
    for connection_id in ids:
        report = connections.sync_quietly(connection_id)
        name = BankConnection.get_by_id(connection_id).institution_name
        click.echo(f"{name}: {report if report is not None else 'failed (see the log)'}")
    click.echo(f"{len(ids)} connection{'s' if len(ids) != 1 else ''} synced.")


@banks_group.command("auto-reconnect")
@click.argument("state", type=click.Choice(["on", "off"]), required=False)
def auto_reconnect(state):
    """Automatic reconnect invites: show, on or off.

    For the whole firm.
    """
    firm = current_firm()
    if state:
        reconnects.set_automatic(firm, state == "on", actor="cli")
        firm = firm.refreshed()
    on = "on" if firm.auto_reconnect_invites else "off"
    click.echo(f"Automatic reconnect invites are {on} for {firm.name}.")


# --- API tokens ---------------------------------------------------------------------------


@click.group("api-tokens")
def api_tokens_group():
    """API tokens of connected applications: list, revoke."""


@api_tokens_group.command("list")
def tokens_list():
    """The firm's API tokens, newest first."""
    firm = current_firm()
    rows = api_tokens.listed(firm)
    tz = clock.zone(firm.timezone)
    for token in rows:
        state = (f"revoked {local_text(token.revoked_at, tz)}" if token.revoked_at else
                 f"last used {local_text(token.last_used_at, tz)}" if token.last_used_at
                 else "never used")
        label = f"  “{token.label}”" if token.label else ""
        click.echo(f"{token.id:>5}  {token.hint}…  {token.staff.email}{label}  "
                   f"made {local_text(token.created_at, tz)}  {state}")
    click.echo(f"{len(rows)} API token{'s' if len(rows) != 1 else ''}.")


@api_tokens_group.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id):
    """Revoke API token TOKEN_ID.

    Requests with it are refused from now on.
    """
    token = api_tokens.revoke(current_firm(), token_id, by=None, actor="cli")
    click.echo(f"API token {token.id} ({token.staff.email}) is revoked.")
