"""Plaid behind the bank-provider port: the real plaid-python SDK against a local
stand-in that speaks Plaid's JSON (tests/plaid_standin.py), through the real Flask app.
Hosted Link → exchange → accounts; webhooks verified as Plaid specifies and applied
every time (Plaid's second break of an item is the same bytes as its first);
connection health, notices and automatic reconnect invites; /transactions/sync."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from core.banking import bank_sync, banks, connections, reconnects
from core.invitations import invites, reminders
from core.platform import tokens
from core.records import (
    BankAccount,
    BankConnection,
    BankLinkSession,
    BankTransaction,
    Event,
    Invite,
    Message,
    ProviderWebhook,
)
from tests.helpers import csrf
from tests.plaid_standin import CHASE, PlaidStandIn, txn

HOOK = "/banks/plaid/webhook"


@pytest.fixture
def web(clock, plaid_web, maria):
    """Maria, signed in to her client account."""
    invite = invites.send(maria, "sms").invite
    token = tokens.unseal(invite.token_sealed)
    page = plaid_web.get(f"/i/{token}")
    assert plaid_web.post(f"/i/{token}/accept", data={"csrf_token": csrf(page)}).status_code == 302
    return plaid_web


def start(web, plaid: PlaidStandIn, path="/i/account/add") -> tuple[str, str]:
    """Open the add (or restore) page; the page's text and the link token it made."""
    page = web.get(path, follow_redirects=True)
    assert page.status_code == 200, page.text
    return page.text, list(plaid.link_tokens)[-1]


def connect(web, plaid, institution=CHASE) -> tuple[BankConnection, object]:
    _, link_token = start(web, plaid)
    item = plaid.complete_link(link_token, institution)
    done = web.get("/i/account/bank/done")
    assert done.status_code == 302, done.text
    return BankConnection.get(BankConnection.item_id == item.item_id), item


def hook(web, plaid, body: dict, **signing):
    raw, headers = plaid.webhook(body, **signing)
    return web.post(HOOK, data=raw, headers=headers)


def item_webhook(item, code: str, **more) -> dict:
    return {"webhook_type": "ITEM", "webhook_code": code, "item_id": item.item_id,
            "environment": "sandbox", **more}


# --- Hosted Link → exchange → accounts -----------------------------------------------


def test_hosted_link_exchange_and_accounts(web, plaid, maria):
    text, link_token = start(web, plaid)
    assert "Continue to Plaid" in text and f'href="{plaid.url}/hosted/' in text
    assert "never see your password" in text and "<script" not in text
    made = plaid.calls("/link/token/create")[-1]
    assert made["webhook"] == "https://connect.example.com/banks/plaid/webhook"
    assert made["hosted_link"]["completion_redirect_uri"] == \
        "https://connect.example.com/i/account/bank/done"
    assert made["products"] == ["transactions"] and "access_token" not in made
    assert made["language"] == "en"
    assert made["user"]["client_user_id"].startswith("ls-")
    assert "Maria" not in json.dumps(made["user"]) and "555" not in json.dumps(made["user"])
    assert web.get("/i/account/bank/done").status_code == 202  # not finished at Plaid yet

    item = plaid.complete_link(link_token)
    done = web.get("/i/account/bank/done")
    # Back from Plaid: the end — what the firm can now see, and that she can close the page.
    assert done.status_code == 302 and done.headers["Location"] == "/i/account/done"
    end = web.get("/i/account/done").text
    assert "Chase is connected." in end and "<h1>You're done</h1>" in end
    assert "Plaid Checking" in end and "••0000" in end and "You can close this page" in end
    connection = BankConnection.get()
    assert (connection.provider, connection.item_id, connection.status) == \
        ("plaid", item.item_id, "active")
    assert connection.institution_name == "Chase" and connection.institution_id == "ins_56"
    assert item.access_token not in connection.access_sealed
    assert tokens.unseal(connection.access_sealed) == item.access_token
    assert sorted((a.name, a.mask, a.subtype, a.balance_cents) for a in
                  BankAccount.select()) == [("Plaid Checking", "0000", "checking", 11000),
                                            ("Plaid Saving", "1111", "savings", 21000)]
    assert len(plaid.calls("/item/public_token/exchange")) == 1
    assert Message.get(Message.kind == "notice_bank_connected").body == \
        "Maria Gonzalez connected Chase."
    assert BankLinkSession.get().status == "done"


def test_the_webhook_finishes_a_link_the_client_never_came_back_from(web, plaid):
    _, link_token = start(web, plaid)
    item = plaid.complete_link(link_token)
    finished = plaid.session_finished(link_token)
    assert hook(web, plaid, finished).status_code == 200
    assert BankConnection.get().item_id == item.item_id
    assert hook(web, plaid, finished).status_code == 200  # Plaid's retry
    back = web.get("/i/account/bank/done")  # the client's browser, after the webhook
    assert back.status_code == 302 and "Chase is connected." in web.get("/i/account").text
    assert len(plaid.calls("/item/public_token/exchange")) == 1
    assert BankConnection.select().count() == 1


def test_back_from_plaid_a_spanish_client_reads_spanish(web, plaid, maria):
    maria.language = "es"
    maria.save()
    _, link_token = start(web, plaid)
    plaid.complete_link(link_token)
    web.get("/i/account/bank/done")
    end = web.get("/i/account/done").text
    assert "Chase está conectado." in end and "¡Listo!" in end
    _, link_token = start(web, plaid)
    plaid.exit_link(link_token)
    assert web.get("/i/account/bank/done").headers["Location"] == "/i/account"
    assert "Salió antes de terminar; no se conectó nada." in web.get("/i/account").text


@pytest.mark.parametrize("client_language, firm_language", [("es", "en"), (None, "es")])
def test_plaids_pages_are_in_the_clients_language(web, plaid, maria, client_language,
                                                   firm_language):
    maria.language = client_language
    maria.save()
    maria.firm.language = firm_language
    maria.firm.save()
    connection, item = connect(web, plaid)
    assert plaid.calls("/link/token/create")[-1]["language"] == "es"
    hook(web, plaid, plaid.break_item(item.item_id))
    start(web, plaid, f"/i/account/restore/{connection.id}")
    assert plaid.calls("/link/token/create")[-1]["language"] == "es"  # update mode too


def test_the_webhooks_public_tokens_connect_while_link_token_get_lags(web, plaid):
    _, link_token = start(web, plaid)
    plaid.lagging = True  # /link/token/get doesn't show the finished session yet
    item = plaid.complete_link(link_token)
    assert web.get("/i/account/bank/done").status_code == 202
    assert hook(web, plaid, plaid.session_finished(link_token)).status_code == 200
    connection = BankConnection.get()
    assert (connection.item_id, connection.institution_id, connection.institution_name,
            connection.status) == (item.item_id, "ins_56", "Chase", "active")
    assert BankAccount.select().count() == 2
    assert Message.get(Message.kind == "notice_bank_connected").body == \
        "Maria Gonzalez connected Chase."
    back = web.get("/i/account/bank/done")
    assert back.status_code == 302 and "Chase is connected." in web.get("/i/account").text
    assert len(plaid.calls("/item/public_token/exchange")) == 1


def test_the_webhooks_exited_status_ends_a_session_while_link_token_get_lags(web, plaid):
    _, link_token = start(web, plaid)
    plaid.lagging = True
    plaid.exit_link(link_token)
    assert hook(web, plaid, plaid.session_finished(link_token)).status_code == 200
    assert BankLinkSession.get().status == "exited"
    assert web.get("/i/account/bank/done").status_code == 302
    assert "You left before finishing" in web.get("/i/account").text


@pytest.mark.parametrize("finished", ["the newest", "the newest, the webhook first",
                                      "an older tab"])
def test_an_abandoned_session_does_not_hold_up_the_one_that_finished(clock, web, plaid,
                                                                     finished):
    _, older = start(web, plaid)
    clock.shift(timedelta(minutes=5))
    _, newest = start(web, plaid)  # the client came back and started again
    clock.shift(timedelta(minutes=5))
    link_token = older if finished == "an older tab" else newest
    plaid.complete_link(link_token)
    if "webhook" in finished:
        assert hook(web, plaid, plaid.session_finished(link_token)).status_code == 200
    done = web.get("/i/account/bank/done")
    assert done.status_code == 302, done.text
    assert "Chase is connected." in web.get("/i/account").text
    assert BankConnection.select().count() == 1
    assert sorted(s.status for s in BankLinkSession.select()) == ["done", "open"]
    assert web.get("/i/account/bank/done").status_code == 302  # a reload says the same


def test_leaving_plaid_early_connects_nothing(web, plaid):
    _, link_token = start(web, plaid)
    plaid.exit_link(link_token)
    done = web.get("/i/account/bank/done")
    assert done.status_code == 302
    assert "You left before finishing" in web.get("/i/account").text
    assert not BankConnection.select().exists()


def test_the_sandbox_form_is_not_offered_with_plaid(web, plaid):
    assert web.get("/i/account/add").headers["Location"] == "/i/account/bank/add"
    assert web.get("/i/account/add/chase").headers["Location"] == "/i/account/bank/add"
    assert not BankConnection.select().exists()


def test_the_firms_chosen_banks_are_named_before_the_hand_off(web, plaid, maria):
    maria.banks = ["Chase", "Ally Bank"]
    maria.save()
    text, _ = start(web, plaid)
    assert "Smith &amp; Co asked for: <strong>Chase, Ally Bank</strong>" in text


# --- webhooks: verified as Plaid specifies ----------------------------------------------


@pytest.mark.parametrize("how", ["forged", "stale", "tampered", "unsigned", "hs256",
                                 "unknown key", "expired key"])
def test_an_unverified_webhook_is_refused_and_changes_nothing(web, plaid, how):
    from cryptography.hazmat.primitives.asymmetric import ec

    connection, item = connect(web, plaid)
    body = plaid.break_item(item.item_id)
    raw, headers = {
        "forged": lambda: plaid.webhook(body, key=ec.generate_private_key(ec.SECP256R1())),
        "stale": lambda: plaid.webhook(body, iat=clock_now() - 301),
        "tampered": lambda: (json.dumps({**body, "item_id": "other"}).encode(),
                             plaid.webhook(body)[1]),
        "unsigned": lambda: (plaid.webhook(body)[0], {"Content-Type": "application/json"}),
        "hs256": lambda: plaid.webhook(body, key="not-a-key-but-a-secret-0123456789abcdef",
                                       algorithm="HS256"),
        "unknown key": lambda: plaid.webhook(body, kid="0000-unknown"),
        "expired key": lambda: _expired(plaid, body),
    }[how]()
    reply = web.post(HOOK, data=raw, headers=headers)
    assert reply.status_code == 401
    assert connection.refreshed().status == "active"
    assert not ProviderWebhook.select().exists()
    assert not Message.select().where(Message.kind == "notice_needs_restoring").exists()


def _expired(plaid, body):
    plaid.key_expired = True
    return plaid.webhook(body)


def clock_now() -> float:
    from core.platform import clock

    return clock.now().timestamp()


def test_a_fresh_webhook_four_minutes_old_is_accepted_and_the_key_is_fetched_once(web, plaid):
    from core.platform import clock

    _, item = connect(web, plaid)
    for code in ("WEBHOOK_UPDATE_ACKNOWLEDGED", "NEW_ACCOUNTS_AVAILABLE"):
        iat = clock.now().timestamp() - 240
        assert hook(web, plaid, item_webhook(item, code), iat=iat).status_code == 200
    assert len(plaid.calls("/webhook_verification_key/get")) == 1


# --- connection health ------------------------------------------------------------------


def test_login_required_needs_restoring_tells_the_firm_and_invites_once(web, plaid, maria):
    reconnects.set_automatic(maria.firm, True)
    connection, item = connect(web, plaid)
    body = plaid.break_item(item.item_id)
    raw, headers = plaid.webhook(body)
    assert web.post(HOOK, data=raw, headers=headers).status_code == 200
    assert web.post(HOOK, data=raw, headers=headers).status_code == 200  # Plaid's retry
    assert hook(web, plaid, body).status_code == 200  # retried again, signed afresh

    assert connection.refreshed().status == "needs_reconnect"
    notices = Message.select().where(Message.kind == "notice_needs_restoring")
    assert notices.count() == 1
    assert "Maria Gonzalez's Chase connection needs restoring (the bank asked the client " \
           "to log in again)" in notices.get().body
    asked = Invite.select().where(Invite.purpose == "reconnect")
    assert asked.count() == 1 and asked.get().channel == "sms"
    assert Message.select().where(Message.invite == asked.get(), Message.kind == "invite") \
        .get().to_addr == "+12125550134"
    assert Event.select().where(Event.kind == "connection.auto_invited").count() == 1
    assert ProviderWebhook.get().repeats == 2


def test_without_automatic_invites_the_firm_is_told_and_asks(web, plaid, maria):
    connection, item = connect(web, plaid)
    assert hook(web, plaid, plaid.break_item(item.item_id)).status_code == 200
    assert connection.refreshed().status == "needs_reconnect"
    assert Message.select().where(Message.kind == "notice_needs_restoring").count() == 1
    assert not Invite.select().where(Invite.purpose == "reconnect").exists()


def test_an_automatic_invite_by_text_waits_for_the_clients_morning(clock, web, plaid, maria):
    reconnects.set_automatic(maria.firm, True)
    connection, item = connect(web, plaid)
    clock.shift(timedelta(hours=13))  # 23:00 in New York
    assert hook(web, plaid, plaid.break_item(item.item_id)).status_code == 200
    assert not Invite.select().where(Invite.purpose == "reconnect").exists()
    assert reconnects.send_due(connection.id) == "not due, or already done"
    clock.shift(timedelta(hours=9))  # 08:00 the next morning
    from jobs import banks as bank_jobs

    assert "1 reconnect invites sent" in bank_jobs.sweep()
    assert bank_jobs.sweep().endswith("0 reconnect invites sent")
    assert Invite.select().where(Invite.purpose == "reconnect").count() == 1


def test_the_automatic_invite_obeys_the_single_invite_rules(web, plaid, maria):
    from core.messaging import optouts

    reconnects.set_automatic(maria.firm, True)
    _, item = connect(web, plaid)
    optouts.opt_out("+12125550134", "test")
    assert hook(web, plaid, plaid.break_item(item.item_id)).status_code == 200
    assert not Invite.select().where(Invite.purpose == "reconnect").exists()
    skipped = Event.get(Event.kind == "connection.auto_invite_skipped")
    assert "opted out" in skipped.detail["reason"]


def test_restore_in_update_mode_then_login_repaired(clock, web, plaid, maria):
    reconnects.set_automatic(maria.firm, True)
    connection, item = connect(web, plaid)
    hook(web, plaid, plaid.break_item(item.item_id))
    asked = Invite.get(Invite.purpose == "reconnect")

    _, link_token = start(web, plaid, f"/i/account/restore/{connection.id}")
    update = plaid.calls("/link/token/create")[-1]
    assert update["access_token"] == item.access_token and "products" not in update
    plaid.complete_link(link_token)
    assert web.get("/i/account/bank/done").status_code == 302
    assert "Chase is working again." in web.get("/i/account").text
    assert connection.refreshed().status == "active"
    assert hook(web, plaid, plaid.repair_item(item.item_id)).status_code == 200
    assert Message.select().where(Message.kind == "notice_bank_restored").count() == 1
    clock.shift(timedelta(days=3))
    assert reminders.send_automatic(asked.id).result == "done"  # its reminder: stopped
    assert not Message.select().where(Message.kind == "auto_reminder").exists()
    assert len(plaid.calls("/item/public_token/exchange")) == 1  # update mode: no new item


def follow(web, invite: Invite) -> None:
    """The client follows the link in the invite's text."""
    token = tokens.unseal(invite.token_sealed)
    page = web.get(f"/i/{token}")
    assert web.post(f"/i/{token}/accept", data={"csrf_token": csrf(page)}).status_code == 302


def test_a_second_break_and_a_second_repair_apply_though_plaid_sends_the_same_bytes(
        clock, web, plaid, maria):
    """ITEM ERROR and LOGIN_REPAIRED name no event and carry no time: the item's second
    break is the same bytes as its first, its second repair as its first."""
    reconnects.set_automatic(maria.firm, True)
    connection, item = connect(web, plaid)
    broken = Message.select().where(Message.kind == "notice_needs_restoring")
    restored = Message.select().where(Message.kind == "notice_bank_restored")
    asked = Invite.select().where(Invite.purpose == "reconnect")
    bodies = []
    for times in (1, 2):
        bodies.append(plaid.webhook(plaid.break_item(item.item_id))[0])
        assert hook(web, plaid, plaid.break_item(item.item_id)).status_code == 200
        assert hook(web, plaid, plaid.break_item(item.item_id)).status_code == 200  # a retry
        assert connection.refreshed().status == "needs_reconnect"
        assert (broken.count(), asked.count()) == (times, times)  # once a break
        follow(web, asked.order_by(Invite.id.desc()).first())
        clock.shift(timedelta(hours=1))
        bodies.append(plaid.webhook(plaid.repair_item(item.item_id))[0])
        assert hook(web, plaid, plaid.repair_item(item.item_id)).status_code == 200
        assert hook(web, plaid, plaid.repair_item(item.item_id)).status_code == 200  # a retry
        assert connection.refreshed().status == "active" and restored.count() == times
        clock.shift(timedelta(hours=1))
    assert bodies[0] == bodies[2] and bodies[1] == bodies[3]
    assert [m.body for m in broken][1].startswith("Maria Gonzalez's Chase connection needs")
    plaid.add(item.item_id, txn(item.accounts[0]["account_id"], "t1", "2026-11-10", "X", 1.0))
    assert connections.sync(connection.id).result == "synced"  # its syncs go on
    assert ProviderWebhook.select().count() == 2  # the record: two bodies, each came often
    assert sorted(w.repeats for w in ProviderWebhook.select()) == [3, 3]


def test_a_restore_finishes_on_the_webhooks_status_while_link_token_get_lags(web, plaid):
    connection, item = connect(web, plaid)
    hook(web, plaid, plaid.break_item(item.item_id))
    _, link_token = start(web, plaid, f"/i/account/restore/{connection.id}")
    plaid.lagging = True
    plaid.complete_link(link_token)
    assert hook(web, plaid, plaid.session_finished(link_token)).status_code == 200
    assert connection.refreshed().status == "active"
    assert Message.get(Message.kind == "notice_bank_restored").body == \
        "Maria Gonzalez restored Chase."
    assert web.get("/i/account/bank/done").status_code == 302
    assert "Chase is working again." in web.get("/i/account").text
    assert len(plaid.calls("/item/public_token/exchange")) == 1  # update mode: no exchange


def test_login_repaired_elsewhere_stops_the_reconnect_reminder(clock, web, plaid, maria):
    connection, item = connect(web, plaid)
    hook(web, plaid, plaid.break_item(item.item_id))
    asked = reconnects.ask(maria).invite
    assert hook(web, plaid, plaid.repair_item(item.item_id)).status_code == 200
    assert connection.refreshed().status == "active"
    assert Message.get(Message.kind == "notice_bank_restored").body == \
        "Maria Gonzalez's Chase connection works again."
    assert asked.refreshed().reminded_at is not None
    assert Event.get(Event.kind == "reminder.skipped").detail["reason"] == \
        "the bank connection works again"
    clock.shift(timedelta(days=3))
    assert reminders.send_automatic(asked.id).result == "done"
    again = hook(web, plaid, plaid.repair_item(item.item_id))  # Plaid's retry: the same bytes
    assert again.status_code == 200 and connection.refreshed().status == "active"
    assert Message.select().where(Message.kind == "notice_bank_restored").count() == 1


def test_pending_expiration_and_a_revoked_permission(web, plaid):
    connection, item = connect(web, plaid)
    hook(web, plaid, item_webhook(item, "PENDING_EXPIRATION",
                                  consent_expiration_time="2026-12-01T00:00:00Z"))
    assert connection.refreshed().status == "needs_reconnect"
    assert "consent ends 2026-12-01" in connection.refreshed().last_error
    hook(web, plaid, item_webhook(item, "USER_PERMISSION_REVOKED"))
    assert connection.refreshed().status == "disconnected"
    assert Message.select().where(Message.kind == "notice_bank_disconnected").count() == 1


def test_a_webhook_for_an_item_not_ours_is_acknowledged(web, plaid):
    reply = hook(web, plaid, {"webhook_type": "ITEM", "webhook_code": "ERROR",
                              "item_id": "someone-elses", "error": {
                                  "error_code": "ITEM_LOGIN_REQUIRED"}})
    assert reply.status_code == 200


# --- /transactions/sync ------------------------------------------------------------------


def sync_updates(item) -> dict:
    return {"webhook_type": "TRANSACTIONS", "webhook_code": "SYNC_UPDATES_AVAILABLE",
            "item_id": item.item_id, "initial_update_complete": True,
            "historical_update_complete": True, "environment": "sandbox"}


def rows() -> dict[str, tuple]:
    return {t.provider_transaction_id: (t.posted_on.isoformat(), t.name, t.amount_cents,
                                        t.pending) for t in BankTransaction.select()}


def test_sync_pages_then_a_modification_and_a_removal_applied_exactly(web, plaid, monkeypatch):
    from plaid_adapter import provider as plaid_provider

    monkeypatch.setattr(plaid_provider, "SYNC_COUNT", 3)
    connection, item = connect(web, plaid)
    checking = item.accounts[0]["account_id"]
    plaid.add(item.item_id, *[txn(checking, f"t{n}", f"2026-11-{10 + n}", f"SHOP {n}", 10.5 + n)
                              for n in range(5)])
    before = len(plaid.calls("/transactions/sync"))
    assert hook(web, plaid, sync_updates(item)).status_code == 200
    assert len(plaid.calls("/transactions/sync")) - before == 2  # two pages, then no more
    assert rows()["t0"] == ("2026-11-10", "SHOP 0", -1050, False)  # money out: negative
    assert len(rows()) == 5 and connection.refreshed().sync_cursor == "c5"

    plaid.modify(item.item_id, txn(checking, "t1", "2026-11-11", "SHOP 1 (posted)", 12.0))
    plaid.remove(item.item_id, "t4")
    plaid.add(item.item_id, txn(checking, "t5", "2026-11-20", "PAYROLL", -2450.0))
    hook(web, plaid, sync_updates(item))
    assert rows() == {"t0": ("2026-11-10", "SHOP 0", -1050, False),
                      "t1": ("2026-11-11", "SHOP 1 (posted)", -1200, False),
                      "t2": ("2026-11-12", "SHOP 2", -1250, False),
                      "t3": ("2026-11-13", "SHOP 3", -1350, False),
                      "t5": ("2026-11-20", "PAYROLL", 245000, False)}
    assert connection.refreshed().sync_cursor == "c8"
    hook(web, plaid, sync_updates(item))  # the same body again: nothing new, nothing changed
    assert len(rows()) == 5


def test_a_failure_on_the_second_page_applies_nothing(web, plaid, monkeypatch):
    from plaid_adapter import provider as plaid_provider

    monkeypatch.setattr(plaid_provider, "SYNC_COUNT", 2)
    connection, item = connect(web, plaid)
    checking = item.accounts[0]["account_id"]
    cursor = connection.refreshed().sync_cursor
    plaid.add(item.item_id, *[txn(checking, f"t{n}", "2026-11-10", "X", 1.0) for n in range(3)])
    plaid.fail_next_sync("INTERNAL_SERVER_ERROR", at_cursor="c2", status=500)
    with pytest.raises(banks.ProviderError) as failed:
        connections.sync(connection.id)
    assert failed.value.transient
    assert rows() == {} and connection.refreshed().sync_cursor == cursor
    assert connections.sync(connection.id).result == "synced"  # RQ's retry, later
    assert len(rows()) == 3


def test_data_changing_while_paging_starts_the_pages_again(web, plaid, monkeypatch):
    from plaid_adapter import provider as plaid_provider

    monkeypatch.setattr(plaid_provider, "SYNC_COUNT", 2)
    connection, item = connect(web, plaid)
    checking = item.accounts[0]["account_id"]
    plaid.add(item.item_id, *[txn(checking, f"t{n}", "2026-11-10", "X", 1.0) for n in range(3)])
    plaid.fail_next_sync(at_cursor="c2")  # the data changed between the pages
    calls = len(plaid.calls("/transactions/sync"))
    assert connections.sync(connection.id).result == "synced"
    assert [b.get("cursor") for b in plaid.calls("/transactions/sync")[calls:]] == \
        ["c0", "c2", "c0", "c2"]
    assert len(rows()) == 3


def test_two_syncs_at_once_apply_the_changes_once(web, plaid):
    connection, item = connect(web, plaid)
    checking = item.accounts[0]["account_id"]
    plaid.add(item.item_id, txn(checking, "t1", "2026-11-10", "X", 1.0))
    provider, access = banks.provider(), item.access_token
    start_cursor = connection.refreshed().sync_cursor
    first = bank_sync.fetch(provider, access, start_cursor)
    second = bank_sync.fetch(provider, access, start_cursor)
    assert bank_sync.apply(connection, start_cursor, first).result == "synced"
    assert bank_sync.apply(connection, start_cursor, second).result == "raced"
    assert len(rows()) == 1


def test_a_sync_finds_a_broken_login_whose_webhook_was_lost(web, plaid):
    connection, item = connect(web, plaid)
    plaid.break_item(item.item_id)
    assert connections.sync(connection.id).result == "broken"
    assert connection.refreshed().status == "needs_reconnect"
    assert connections.sync(connection.id).result == "skipped"


# --- tokens out of sight --------------------------------------------------------------


def test_access_tokens_are_masked_in_every_log_line(web, plaid, caplog):
    _, item = connect(web, plaid)
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").warning("got %s for %s", item.access_token, item.item_id)
        logging.getLogger("test").info("sent {'access_token': '%s'}", item.access_token)
    assert item.access_token not in caplog.text
    assert "access-sandbox-" in caplog.text and "…" in caplog.text
    stored = json.dumps([list(r) for r in BankConnection.select().tuples()], default=str)
    assert item.access_token not in stored


def test_plaid_settings_are_read_and_checked():
    from core.platform import config

    env = {"SECRET_KEY": "x", "BANK_PROVIDER": "plaid", "PLAID_CLIENT_ID": "id",
           "PLAID_SECRET": "s", "PLAID_ENV": "Production", "PLAID_API_URL": "http://x"}
    read = config.Settings.from_env(env)
    assert (read.bank_provider_name, read.plaid_env, read.plaid_api_url) == \
        ("plaid", "production", "http://x")
    assert read.plaid_webhook_url == "http://localhost:5000/banks/plaid/webhook"
    with pytest.raises(config.ConfigError, match="PLAID_ENV"):
        config.Settings.from_env({**env, "PLAID_ENV": "development"})
    with pytest.raises(config.ConfigError, match="API_RATE"):
        config.Settings.from_env({**env, "API_RATE": "lots"})
