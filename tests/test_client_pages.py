"""The client's pages, through the real Flask app (test client)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from core.banking import connections
from core.invitations import clients, invites, links
from core.messaging import outbox
from core.platform import config, tokens
from core.records import BankConnection, ClientAccount, Event, Invite, Message
from tests.helpers import app_without_redis, csrf, statements_run


@pytest.fixture
def app(sqlite_database):
    return app_without_redis()


@pytest.fixture
def web(app):
    return app.test_client()


@pytest.fixture
def invited(clock, sqlite_database):
    from core.firms import firms

    firm = firms.create("Smith & Co", admin_email="a@s.example", admin_password="x" * 12)
    client = clients.add(firm, "Maria Gonzalez", phone="2125550134", banks=["Chase", "Ally Bank"])
    invite = invites.send(client, "sms").invite
    return invite, tokens.unseal(invite.token_sealed)


def accept(web, token):
    page = web.get(f"/i/{token}")
    return web.post(f"/i/{token}/accept", data={"csrf_token": csrf(page)})


def test_opening_the_link_names_the_firm_and_changes_nothing_else(web, invited):
    invite, token = invited
    page = web.get(f"/i/{token}")
    assert page.status_code == 200
    assert "Hi Maria" in page.text and "Smith &amp; Co" in page.text
    assert "connect your bank accounts" in page.text
    assert "This link works until <strong>Sat 28 Nov, 10:00 AM EST</strong>" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    web.get(f"/i/{token}")
    fresh = invite.refreshed()
    assert fresh.first_clicked_at is not None and fresh.accepted_at is None
    assert not ClientAccount.select().exists()


def test_an_opened_link_page_reads_the_database_once_with_the_firms_contact(web, invited):
    """Every client opens it: one statement (the invite with its client, firm, sender
    and the firm's first admin, for the footer's email), nothing written after the
    first opening."""
    _, token = invited
    web.get(f"/i/{token}")  # the first opening records it
    with statements_run() as ran:
        page = web.get(f"/i/{token}")
    assert page.status_code == 200 and 'href="mailto:a@s.example"' in page.text
    assert len(ran) == 1, ran


def test_a_signed_in_page_reads_the_client_once_then_their_banks(web, invited):
    """Every page of the account: one statement for who is signed in (the session with
    the client, their firm, its first admin for the footer, and the client's account),
    one for the connections listed."""
    _, token = invited
    accept(web, token)
    web.get("/i/account")  # (the first view after signing in may touch the session)
    with statements_run() as ran:
        page = web.get("/i/account")
    assert page.status_code == 200 and "No banks connected yet" in page.text
    assert 'href="mailto:a@s.example"' in page.text and "Smith &amp; Co" in page.text
    assert len(ran) == 2, ran


def test_a_session_whose_client_has_no_account_is_signed_out(web, invited):
    invite, token = invited
    accept(web, token)
    ClientAccount.delete().where(ClientAccount.client == invite.client_id).execute()
    page = web.get("/i/account")
    assert page.status_code == 403 and 'href="/account/sign-in"' in page.text


def test_accept_needs_the_csrf_token(web, invited):
    _, token = invited
    reply = web.post(f"/i/{token}/accept")
    assert reply.status_code == 400
    assert "The page was open too long" in reply.text
    assert not ClientAccount.select().exists()


def test_accepting_signs_the_client_in_with_a_safe_cookie(web, invited):
    invite, token = invited
    reply = accept(web, token)
    assert reply.status_code == 302 and reply.headers["Location"] == "/i/account"
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert ClientAccount.get(ClientAccount.client == invite.client_id)
    page = web.get("/i/account")
    assert "No banks connected yet" in page.text
    assert web.get(f"/i/{token}").headers["Location"] == "/i/account"  # already theirs


def test_add_a_preselected_bank_then_the_firm_hears_and_no_reminder_follows(clock, web, invited):
    invite, token = invited
    accept(web, token)
    page = web.get("/i/account/add")
    assert page.text.index("Chase") < page.text.index("Or find your bank")
    assert "Suggested by Smith &amp; Co" in page.text and "Ally Bank" in page.text
    form = web.get("/i/account/add/chase")
    done = web.post("/i/account/add/chase", data={"csrf_token": csrf(form),
                                                  "username": "user_good", "password": "pass_good"})
    assert done.status_code == 302
    assert "Chase is connected." in web.get("/i/account").text
    assert BankConnection.get().status == "active"
    assert Message.get(Message.kind == "notice_bank_connected").body == \
        "Maria Gonzalez connected Chase."
    assert Event.select().where(Event.kind == "connection.connected").count() == 1
    clock.shift(timedelta(days=3))
    from core.invitations import reminders

    assert reminders.send_automatic(invite.id).result == "skipped"
    assert not Message.select().where(Message.kind == "auto_reminder").exists()


def test_restoring_while_signed_in_settles_an_open_reconnect_reminder(clock, web, invited):
    from core.invitations import reminders

    invite, token = invited
    accept(web, token)
    mine = BankConnection.create(client=invite.client, institution_id="chase",
                                 institution_name="Chase", status="needs_reconnect")
    clock.shift(timedelta(days=1))
    again = invites.send(invite.client, "sms", purpose="reconnect").invite
    form = web.get(f"/i/account/restore/{mine.id}")
    web.post(f"/i/account/restore/{mine.id}", data={"csrf_token": csrf(form),
                                                    "username": "user_good",
                                                    "password": "pass_good"})
    clock.shift(timedelta(days=3))
    assert reminders.send_automatic(again.id).result == "done"
    assert not Message.select().where(Message.kind == "auto_reminder").exists()
    assert Event.get(Event.kind == "reminder.skipped").detail == {
        "reason": "the client connected a bank"}


def test_search_finds_banks_not_preselected(web, invited):
    accept(web, invited[1])
    page = web.get("/i/account/add?q=wells")
    assert "Wells Fargo" in page.text
    assert "No bank matches" in web.get("/i/account/add?q=zzzz").text


def test_wrong_credentials_and_a_one_time_code(web, invited):
    accept(web, invited[1])
    form = web.get("/i/account/add/ally-bank")
    wrong = web.post("/i/account/add/ally-bank", data={"csrf_token": csrf(form),
                                                       "username": "me", "password": "nope"})
    assert wrong.status_code == 422
    assert "did not accept that username or password" in wrong.text
    mfa = web.post("/i/account/add/ally-bank", data={"csrf_token": csrf(form),
                                                     "username": "user_mfa",
                                                     "password": "pass_good"})
    assert "One-time code" in mfa.text
    challenge = re.search(r'name="challenge" value="([^"]+)"', mfa.text).group(1)
    bad = web.post("/i/account/add/ally-bank", data={"csrf_token": csrf(form),
                                                     "challenge": challenge, "code": "0000"})
    assert "That code is not right" in bad.text
    good = web.post("/i/account/add/ally-bank", data={"csrf_token": csrf(form),
                                                      "challenge": challenge, "code": "1234"})
    assert good.status_code == 302
    assert BankConnection.get().institution_name == "Ally Bank"


def test_restore_a_broken_connection_and_never_another_clients(web, invited):
    invite, token = invited
    accept(web, token)
    client = invite.client
    mine = BankConnection.create(client=client, institution_id="chase", institution_name="Chase")
    connections.mark_broken(mine, "the bank asked to sign in again")
    assert "Needs restoring" in web.get("/i/account").text
    other = clients.add(client.firm, "Other Client", email="o@example.com")
    theirs = BankConnection.create(client=other, institution_id="chase", institution_name="Chase",
                                   status="needs_reconnect")
    assert web.get(f"/i/account/restore/{theirs.id}").status_code == 404
    form = web.get(f"/i/account/restore/{mine.id}")
    assert form.status_code == 200
    assert web.post(f"/i/account/restore/{theirs.id}", data={
        "csrf_token": csrf(form), "username": "user_good",
        "password": "pass_good"}).status_code == 404
    assert theirs.refreshed().status == "needs_reconnect"
    web.post(f"/i/account/restore/{mine.id}", data={"csrf_token": csrf(form),
                                                    "username": "user_good",
                                                    "password": "pass_good"})
    assert mine.refreshed().status == "active"
    assert Message.select().where(Message.kind == "notice_needs_restoring").count() == 1
    assert Message.select().where(Message.kind == "notice_bank_restored").count() == 1


def test_pages_other_than_the_account_are_out_of_reach(web, invited):
    assert web.get("/i/account").status_code == 403
    accept(web, invited[1])
    for path in ("/i/admin", "/i/account/clients", "/i/account/restore/999", "/outbox/../admin"):
        assert web.get(path).status_code in (403, 404), path


def test_an_expired_link_says_when_and_asks_the_firm_once(clock, web, invited):
    invite, token = invited
    clock.shift(timedelta(days=5))
    page = web.get(f"/i/{token}")
    assert page.status_code == 404
    assert ("This link expired on <strong>Sat 28 Nov, 10:00 AM EST</strong>. Ask Smith &amp; Co "
            "for a new one.") in page.text
    for _ in range(2):
        asked = web.post(f"/i/{token}/new-link", data={"csrf_token": csrf(page)})
        assert "Smith &amp; Co has been asked to send you a new link" in asked.text
    notices = Message.select().where(Message.kind == "notice_new_link_requested")
    assert notices.count() == 1
    assert "Maria Gonzalez asked for a new link (theirs expired)" in notices.get().body


@pytest.mark.parametrize("how", ["superseded", "revoked", "accepted"])
def test_other_dead_links_say_why(clock, web, invited, how):
    invite, token = invited
    if how == "superseded":
        clock.shift(timedelta(minutes=2))
        invites.resend(invite.client)
    elif how == "revoked":
        invites.revoke(invite.client)
    else:
        accept(web.application.test_client(), token)
    page = web.get(f"/i/{token}")
    words = {"superseded": "A newer link replaced this one", "revoked": "withdrew this link",
             "accepted": "already been used"}
    assert page.status_code == 404 and words[how] in page.text


def test_unknown_links_look_dead_and_guessing_is_slowed(web, invited):
    first = web.get("/i/AAAAAAAAAAAAAAAAAAAAAA")
    assert first.status_code == 404
    assert "This link doesn't work" in first.text and "Smith" not in first.text
    for _ in range(25):
        last = web.get("/i/" + "B" * 22)
    assert last.status_code == 429
    assert web.get(f"/i/{invited[1]}").status_code == 429  # even a good one, for a while


def test_links_come_from_public_base_url_not_the_host_header(web, invited):
    invite, token = invited
    body = outbox.text(Message.get(Message.invite == invite))
    assert f"https://connect.example.com/i/{token}" in body
    page = web.get(f"/i/{token}", headers={"Host": "evil.example"})
    assert "evil.example" not in page.text


def test_invite_row_is_untouched_by_link_previews(web, invited):
    invite, token = invited
    for agent in ("facebookexternalhit/1.1", "Slackbot-LinkExpanding 1.0", "WhatsApp/2"):
        web.get(f"/i/{token}", headers={"User-Agent": agent})
    assert Invite.get_by_id(invite.id).accepted_at is None


# --- who is asking, and "This isn't me" ----------------------------------------------------


@pytest.fixture
def branded(clock, sqlite_database):
    from core.firms import firm_settings, firms

    firm = firms.create("Smith & Co", admin_email="a@s.example", admin_password="x" * 12)
    ann = firms.add_staff(firm, "ann@smith.example", "y" * 12, name="Ann Lee")
    for setting, value in (("logo_url", "https://smith.example/logo.png"),
                           ("brand_color", "#0A7D4F"), ("phone", "(212) 555-0100"),
                           ("email", "office@smith.example")):
        firm_settings.set_setting(firm, setting, value)
    client = clients.add(firm, "Maria Gonzalez", phone="2125550134", banks=["Chase"])
    invite = invites.send(client, "sms", by=ann).invite
    return invite, tokens.unseal(invite.token_sealed)


def test_the_landing_page_says_who_is_asking_and_how_to_check(web, branded):
    invite, token = branded
    page = web.get(f"/i/{token}")
    text = page.text
    assert "<strong>Ann Lee</strong> at <strong>Smith &amp; Co</strong> asked you to" in text
    assert '<img class="logo" src="https://smith.example/logo.png"' in text
    assert "What is LedgerSync?" in text and "Move money or make payments." in text
    assert "Add bank connections." in text
    assert 'href="tel:+12125550100">(212) 555-0100</a>' in text
    assert 'href="mailto:office@smith.example"' in text
    assert f'href="/i/{token}/not-me">This isn\'t me</a>' in text
    nonce = re.search(r'<style nonce="([^"]+)">\.top\{background:#0a7d4f;color:#ffffff\}', text)
    csp = page.headers["Content-Security-Policy"]
    assert nonce and f"'nonce-{nonce.group(1)}'" in csp and "img-src 'self' https:" in csp
    assert "script-src" not in csp and "default-src 'none'" in csp


def test_without_a_sender_or_settings_the_page_names_the_firm_and_its_admin(web, invited):
    _, token = invited
    text = web.get(f"/i/{token}").text
    assert "<strong>Smith &amp; Co</strong> invites you to" in text
    assert 'href="mailto:a@s.example"' in text and "<img" not in text and "<style" not in text


def test_this_isnt_me_withdraws_the_link_tells_the_firm_and_offers_nothing_else(web, branded):
    invite, token = branded
    confirm = web.get(f"/i/{token}/not-me")
    assert confirm.status_code == 200 and invite.refreshed().revoked_at is None
    done = web.post(f"/i/{token}/not-me", data={"csrf_token": csrf(confirm)})
    assert done.status_code == 200
    assert "has been told that it reached the wrong person" in done.text
    main = done.text.split('<main id="main">')[1].split("</main>")[0]
    assert "<form" not in main and "<a " not in main  # nothing else on offer
    assert invite.refreshed().revoked_at is not None
    notice = Message.get(Message.kind == "notice_not_me")
    assert notice.body == (
        "Someone who opened the link in the text sent to Maria Gonzalez says it isn't them. "
        "The link no longer works. Check Maria Gonzalez's number before you send another: "
        "/ledgersync status Maria Gonzalez")
    assert Event.get(Event.kind == "invite.disowned").actor == "client"
    again = web.post(f"/i/{token}/not-me", data={"csrf_token": csrf(confirm)})
    assert again.status_code == 200 and Message.select().where(
        Message.kind == "notice_not_me").count() == 1
    assert web.get(f"/i/{token}").status_code == 404  # the link is dead
    assert web.post(f"/i/{token}/accept", data={"csrf_token": csrf(confirm)}).status_code == 404


def test_a_link_withdrawn_by_this_isnt_me_stays_done_and_offers_nothing(web, branded):
    invite, token = branded
    confirm = web.get(f"/i/{token}/not-me")
    web.post(f"/i/{token}/not-me", data={"csrf_token": csrf(confirm)})
    for page in (web.get(f"/i/{token}"), web.get(f"/i/{token}/not-me"),
                 web.post(f"/i/{token}/new-link", data={"csrf_token": csrf(confirm)}),
                 web.post(f"/i/{token}/accept", data={"csrf_token": csrf(confirm)})):
        assert page.status_code == 404
        assert ("Someone who opened this link said it reached the wrong person, so it no "
                "longer works. Smith &amp; Co has been told.") in page.text
        main = page.text.split('<main id="main">')[1].split("</main>")[0]
        assert "<form" not in main and "Request a new link" not in main
        assert "/account/sign-in" not in page.text  # no sign-in either
    assert links.request_new_link(token) is False
    assert not Message.select().where(Message.kind == "notice_new_link_requested").exists()
    assert [m.kind for m in Message.select().where(Message.channel == "slack")] == \
        ["notice_not_me"]  # the firm heard once: check the number


def test_this_isnt_me_on_an_unknown_or_used_link_changes_nothing(web, invited):
    invite, token = invited
    unknown = web.get("/i/" + "Z" * 22 + "/not-me")
    assert unknown.status_code == 404 and "This link doesn" in unknown.text
    accept(web, token)
    used = web.application.test_client()
    page = used.get(f"/i/{token}/not-me")
    assert page.status_code == 404 and "already been used" in page.text
    assert used.post(f"/i/{token}/not-me", data={"csrf_token": csrf(page)}).status_code == 404
    assert not Message.select().where(Message.kind == "notice_not_me").exists()


def test_the_firms_header_is_on_every_page_of_the_flow_with_the_sandbox_hint(web, branded):
    _, token = branded
    accept(web, token)
    for path in ("/i/account", "/i/account/add", "/i/account/add/chase"):
        page = web.get(path)
        assert '<span class="firm">Smith &amp; Co</span>' in page.text, path
        assert "https://smith.example/logo.png" in page.text, path
    form = web.get("/i/account/add/chase")
    assert "Sandbox: user_good / pass_good" in form.text
    mfa = web.post("/i/account/add/chase", data={"csrf_token": csrf(form),
                                                 "username": "user_mfa", "password": "pass_good"})
    assert "One-time code" in mfa.text and '<span class="firm">Smith &amp; Co</span>' in mfa.text


def test_no_sandbox_hint_with_another_provider(app, invited):
    config.use(config.settings().with_(bank_provider="tests.form_provider:QuietFormProvider"))
    web = app.test_client()
    accept(web, invited[1])
    form = web.get("/i/account/add/chase")
    assert form.status_code == 200 and "Chase username" in form.text
    assert "Sandbox" not in form.text and "user_good" not in form.text
