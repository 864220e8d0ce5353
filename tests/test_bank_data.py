"""Accounts and transactions on the embedded default (the sandbox provider), and how the
firm reads them: Slack (`/ledgersync accounts|transactions`), the command line (with
--csv), and the sync's schedule (after connecting, and the hourly bank sweep)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import date, timedelta

import pytest

from core.banking import bank_data, banks, connections, reconnects
from core.invitations import clients
from core.platform import tokens
from core.platform.errors import NotFound
from core.records import BankAccount, BankConnection, BankTransaction, Firm
from tests.slack_requests import button, command
from tests.slack_requests import said as said_json


def said(slack, count=1) -> str:
    """What the app answered, as one string with its characters as written."""
    return json.dumps(json.loads(said_json(slack, count)), ensure_ascii=False)


def sandbox_connect(client, bank="chase") -> BankConnection:
    outcome = connections.add(client, bank, "user_good", "pass_good")
    assert outcome.status == "connected"
    return outcome.connection.refreshed()


def expected(connection: BankConnection, first: date, last: date) -> set[str]:
    """The sandbox's own transactions for those days (both included)."""
    access = tokens.unseal(connection.access_sealed)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return {t.id for d in days for t in banks.SandboxProvider().day(access, d)}


def stored(connection: BankConnection) -> set[str]:
    rows = BankTransaction.select().where(BankTransaction.connection == connection)
    return {t.provider_transaction_id for t in rows}


# --- the sandbox: accounts and a deterministic set of transactions ----------------------


def test_a_sandbox_connection_has_accounts_and_its_transactions(clock, maria):
    connection = sandbox_connect(maria)
    assert connection.provider == "sandbox" and connection.item_id.startswith("sbx-")
    assert "access-sandbox-" not in connection.access_sealed
    assert [(a.name, a.subtype) for a in bank_data.accounts(maria)] == [
        ("Checking", "checking"), ("Savings", "savings")]
    today = clock_today()
    history = expected(connection, today - timedelta(days=44), today)
    assert stored(connection) == history and len(history) > 25  # more than a sync page
    assert connections.sync(connection.id).added == 0  # nothing new today
    clock.shift(timedelta(days=2))
    assert connections.sync(connection.id).result == "synced"
    assert stored(connection) == expected(connection, today - timedelta(days=44),
                                          today + timedelta(days=2))


def clock_today() -> date:
    from core.platform import clock

    return clock.now().date()


def test_the_same_connection_always_shows_the_same_transactions(clock, maria):
    connection = sandbox_connect(maria)
    before = {(t.provider_transaction_id, t.amount_cents, t.name)
              for t in BankTransaction.select()}
    BankConnection.update(sync_cursor=None).execute()
    BankTransaction.delete().execute()
    connections.sync(connection.id)
    after = {(t.provider_transaction_id, t.amount_cents, t.name) for t in BankTransaction.select()}
    assert before == after


def test_the_bank_sweep_syncs_each_connection_once_a_day(clock, maria):
    from jobs import banks as bank_jobs

    connection = sandbox_connect(maria)
    assert bank_jobs.sweep().startswith("0 syncs")  # synced just now, at connecting
    clock.shift(timedelta(hours=23))
    assert bank_jobs.sweep().startswith("1 syncs")
    assert connection.refreshed().synced_at is not None
    assert bank_jobs.sweep().startswith("0 syncs")


def test_a_broken_connection_is_not_synced_and_is_restored_with_its_data(clock, maria):
    connection = sandbox_connect(maria)
    connections.mark_broken(connection)
    assert connections.sync(connection.id).result == "skipped"
    connections.restore(maria, connection.id, "user_good", "pass_good")
    assert connection.refreshed().status == "active"
    assert stored(connection)  # kept: the same login, restored


def test_reading_is_within_one_firm(clock, maria):
    from core.firms import firms
    from core.platform.errors import NotFound

    connection = sandbox_connect(maria)
    other = firms.create("Other LLP", admin_email="o@other.example", admin_password="x" * 12)
    account = BankAccount.get(BankAccount.connection == connection)
    assert bank_data.account(maria.firm, account.id).id == account.id
    with pytest.raises(NotFound):
        bank_data.account(other, account.id)
    with pytest.raises(NotFound):
        clients.get(other, maria.id)


def test_money_reads_as_the_account_holder_sees_it():
    assert bank_data.money(-123456) == "−$1,234.56"
    assert bank_data.money(245000) == "+$2,450.00"
    assert bank_data.money(11000, signed=False) == "$110.00"
    assert bank_data.money(-5, "JPY") == "−0.05 JPY"
    assert bank_data.decimal_text(-433) == "-4.33" and bank_data.decimal_text(5) == "0.05"


# --- Slack -----------------------------------------------------------------------------


@pytest.fixture
def banked(smith):
    maria = clients.Client.get(clients.Client.name == "Maria Gonzalez")
    sandbox_connect(maria)
    sandbox_connect(maria, "ally-bank")
    return maria


def test_accounts_in_slack(web, slack, banked):
    command(web, slack, "accounts maria")
    text = said(slack)
    assert "*Maria Gonzalez* — 2 banks, 4 accounts" in text
    assert "*Ally Bank* · :large_green_circle: working · synced <!date^" in text
    assert "Checking ••" in text and "savings" in text and "$" in text


def test_transactions_in_slack_a_page_at_a_time(clock, web, slack, banked):
    # 45 days hold ~35 transactions (a card purchase on 7 days in 10, two paydays a
    # month): more than a page of 20 for any connection, whatever its random token.
    command(web, slack, "transactions maria gonzalez chase checking 45d")
    first = json.loads(said_json(slack))[0]
    text = json.dumps(first, ensure_ascii=False)
    assert "Chase Checking ••" in text and "since" in text
    blocks = first["blocks"] if isinstance(first["blocks"], list) else json.loads(first["blocks"])
    more = next(b for b in blocks if b["type"] == "actions")["elements"][0]
    assert more["action_id"] == "show_more"
    shown = text.count("`")
    button(web, slack, "show_more", more["value"])
    second = slack.wait_for("respond:button")[0]
    assert "Chase Checking ••" in json.dumps(second, ensure_ascii=False)
    assert shown > 20 and json.dumps(second) != json.dumps(first)


def test_transactions_need_a_staff_role_and_stay_in_the_firm(web, slack, banked, other):
    from core.firms import support

    support.add("help@ledgersync.example", slack_team_id="T0SUPPORT", slack_user_id="USUP")
    command(web, slack, "transactions maria firm:\"Smith & Co\"", team="T0SUPPORT", user="USUP")
    assert "can't read clients' transactions" in said(slack)
    command(web, slack, "transactions maria", team="T0OTHER", user="UOLGA")
    assert "No client matches" in said(slack, 2)


def test_a_tampered_show_more_finds_nothing(web, slack, banked, other):
    olga = clients.Client.get(clients.Client.name == "Olga Client")
    value = json.dumps({"cmd": "transactions", "client": olga.id, "cursor": None})
    button(web, slack, "show_more", value)
    assert "does not exist" in json.dumps(slack.wait_for("respond:button")[0])


def test_automatic_reconnect_invites_are_an_admins_choice(web, slack, smith):
    command(web, slack, "auto-reconnect")
    assert "Automatic reconnect invites are *off*" in said(slack)
    command(web, slack, "auto-reconnect on")
    assert "are now *on*" in said(slack, 2)
    assert Firm.get_by_id(smith.id).auto_reconnect_invites is True
    reconnects.set_automatic(smith, False)


def test_help_lists_the_bank_commands(web, slack, smith):
    command(web, slack, "help")
    text = said(slack)
    for words in ("accounts <client>", "transactions <client> [account] [since]",
                  "api-tokens", "auto-reconnect"):
        assert words in text


# --- the command line ---------------------------------------------------------------------


@pytest.fixture
def cli(sqlite_database, tmp_path):
    from core.platform import config

    settings = config.settings()
    env = {**os.environ, "DATABASE_URL": settings.database_url,
           "SECRET_KEY": settings.secret_key, "REDIS_URL": "redis://127.0.0.1:1/0"}

    def ledgersync(*args) -> str:
        done = subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        return done.stdout

    return ledgersync


def test_accounts_and_transactions_on_the_command_line_and_as_csv(cli, sqlite_database):
    from core.firms import firms

    firm = firms.create("Smith & Co", admin_email="ann@smith.example", admin_password="x" * 12)
    maria = clients.add(firm, "Maria Gonzalez", phone="2125550134")
    connection = sandbox_connect(maria)
    shown = cli("accounts", "maria")
    assert "Chase — working, synced" in shown and "Checking ••" in shown
    rows = list(csv.DictReader(io.StringIO(cli("accounts", "maria", "--csv"))))
    assert [r["account"] for r in rows] == ["Checking", "Savings"]
    table = cli("transactions", "maria", "--limit", "5")
    assert "5 transactions; more with --limit 0." in table
    exported = list(csv.DictReader(io.StringIO(cli("transactions", "maria", "--csv"))))
    assert len(exported) == BankTransaction.select().count() == len(stored(connection))
    payroll = [r for r in exported if r["name"] == "Payroll deposit"]
    assert payroll and payroll[0]["amount"] == "2450.00"
    assert all(r["amount"].startswith("-") for r in exported if r["category"] != "INCOME")
    savings = cli("transactions", "maria", "savings", "--csv")
    assert all(r["account"] == "Savings" for r in csv.DictReader(io.StringIO(savings)))


def test_admins_list_and_revoke_api_tokens_in_slack(web, slack, smith):
    from core.firms import api_tokens

    made = api_tokens.exchange("bob@smith.example", "correct horse 2", "Accounting CS")
    command(web, slack, "api-tokens")
    listing = said(slack)
    assert f"`#{made.record.id}`" in listing and "bob@smith.example" in listing
    assert "Accounting CS" in listing and made.token not in listing
    command(web, slack, f"api-tokens revoke {made.record.id}")
    assert "is revoked" in said(slack, 2)
    assert made.record.refreshed().revoked_at is not None
    from core.firms import access
    from tests.slack_standin import TEAM

    assert access.connect(TEAM, "UBOB", "bob@smith.example", "correct horse 2").ok
    command(web, slack, "api-tokens", user="UBOB")
    assert "the staff role can't list or revoke the firm's API tokens" in said(slack, 3)


def test_an_account_that_isnt_there_is_answered_with_the_ones_that_are(clock, maria):
    """`transactions maria chequing` (a spelling she doesn't have): the answer lists her
    accounts, so the next try is right."""
    sandbox_connect(maria)
    with pytest.raises(NotFound) as refused:
        bank_data.find_account(maria, "chequing")
    words = str(refused.value)
    assert "has no account matching 'chequing'; their accounts: Chase Checking ••" in words
    assert "Chase Savings ••" in words
