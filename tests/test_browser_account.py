"""The client's lasting account in headless Chromium on a phone, over https under
gunicorn as the Procfile runs it, texts through the Twilio stand-in: sign out and
back in with a code, a wrong code five times, an unknown number, who is asking on
the landing page, "This isn't me", and no sandbox hint with another provider. Each
page is screenshotted and checked with axe (0 serious or critical violations)."""

from __future__ import annotations

import re

from core.banking import connections
from core.firms import firm_settings, firms
from core.records import BankConnection, Event, Invite, Message, SignInAttempt
from tests.browser_helpers import Checked, code_texted, invited, phone, png, served

MARIA = "+12125550134"


def test_sign_out_then_back_in_with_a_texted_code_and_restore_a_broken_bank(
        sqlite_database, tmp_path, twilio, browser):
    checked = Checked("sign-in")
    with served(tmp_path, twilio):
        client, link = invited()
        page = phone(browser)
        page.goto(link)
        page.get_by_role("button", name="Accept and continue").click()
        page.wait_for_url("**/i/account")
        ally = BankConnection.create(client=client, institution_id="ally-bank",
                                     institution_name="Ally Bank")
        connections.mark_broken(ally, "the bank asked to sign in again")
        page.get_by_role("button", name="Sign out").click()
        assert page.get_by_role("heading", name="You're signed out").is_visible()
        checked.page(page, "1-signed-out")
        page.get_by_role("link", name="Sign in with a code").click()
        checked.page(page, "2-sign-in")
        page.get_by_label("Mobile number or email").fill("(212) 555-0134")
        page.get_by_role("button", name="Send me a code").click()
        page.wait_for_url("**/account/sign-in/code")
        assert page.get_by_text("•••-0134").is_visible()
        checked.page(page, "3-code")
        page.get_by_label("6-digit code").fill(code_texted(twilio, MARIA))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/i/account")
        assert page.get_by_text("Needs restoring", exact=True).is_visible()
        checked.page(page, "4-account")
        page.get_by_role("link", name="Restore Ally Bank").click()
        assert page.locator("header .firm").inner_text() == "Smith & Co"
        page.get_by_label("Ally Bank username").fill("user_good")
        page.get_by_label("Password").fill("pass_good")
        checked.page(page, "5-restore")
        page.get_by_role("button", name="Restore").click()
        page.wait_for_url("**/i/account/done")
        assert page.get_by_text("Ally Bank is working again.").is_visible()
        checked.page(page, "6-restored")
    assert ally.refreshed().status == "active"
    assert Event.select().where(Event.kind == "signin.succeeded").count() == 1
    checked.assert_clean()


def test_five_wrong_codes_end_it_and_an_unknown_number_sees_the_same_page(
        sqlite_database, tmp_path, twilio, browser):
    checked = Checked("wrong-code")
    with served(tmp_path, twilio) as server:
        client, link = invited()
        first = phone(browser)
        first.goto(link)
        first.get_by_role("button", name="Accept and continue").click()
        first.wait_for_url("**/i/account")
        pages = {}
        for number in ("(212) 555-0134", "(212) 555-0199"):
            page = phone(browser)
            page.goto(f"{server.base}/account/sign-in")
            page.get_by_label("Mobile number or email").fill(number)
            page.get_by_role("button", name="Send me a code").click()
            page.wait_for_url("**/account/sign-in/code")
            pages[number] = page
        known, unknown = pages.values()
        shown = [re.sub(r"\d{4}\b", "XXXX", p.locator("main").inner_text()) for p in pages.values()]
        assert shown[0] == shown[1]  # the same page whether or not the number is anyone's
        checked.page(unknown, "1-unknown-number")
        wrong = f"{(int(code_texted(twilio, MARIA)) + 1) % 10**6:06d}"
        for left in (4, 3, 2, 1):
            known.get_by_label("6-digit code").fill(wrong)
            known.get_by_role("button", name="Sign in").click()
            assert known.get_by_text(f"That code isn't right. {left} tr").is_visible()
        checked.page(known, "2-wrong-code")
        known.get_by_label("6-digit code").fill(wrong)
        known.get_by_role("button", name="Sign in").click()
        assert known.get_by_role("heading", name="This code doesn't work any more").is_visible()
        checked.page(known, "3-ended")
        known.goto(f"{server.base}/account/sign-in/code")  # no code to type any more
        known.wait_for_url("**/account/sign-in")
        assert not twilio.sent("+12125550199")
    assert Event.get(Event.kind == "signin.locked").client_id == client.id
    ended = next(a for a in SignInAttempt.select() if a.clients == [client.id])
    assert (ended.tries, ended.end_reason, ended.used_at) == (5, "too many wrong codes", None)
    checked.assert_clean()


def test_the_landing_page_shows_the_inviter_and_the_logo_and_this_isnt_me_tells_the_firm(
        sqlite_database, tmp_path, browser):
    checked = Checked("landing")
    firm = firms.create("Smith & Co", admin_email="a@s.example", admin_password="x" * 12)
    ann = firms.add_staff(firm, "ann@smith.example", "y" * 12, name="Ann Lee")
    for setting, value in (("logo_url", "https://logo.smith.example/logo.png"),
                           ("brand_color", "#0a7d4f"), ("phone", "(212) 555-0100")):
        firm_settings.set_setting(firm, setting, value)
    with served(tmp_path):
        client, link = invited(firm=firm, by=ann)
        page = phone(browser)
        page.route("https://logo.smith.example/**",
                   lambda route: route.fulfill(body=png(), content_type="image/png"))
        page.goto(link)
        assert page.get_by_text("Ann Lee at Smith & Co asked you to connect your bank "
                                "accounts").is_visible()
        logo = page.locator("header img.logo")
        assert logo.is_visible() and logo.evaluate("img => img.naturalWidth") == 120
        header = page.locator("header.top").evaluate("h => getComputedStyle(h).backgroundColor")
        assert header == "rgb(10, 125, 79)"  # the firm's colour, through the CSP's nonce
        assert page.get_by_role("link", name="(212) 555-0100").is_visible()
        checked.page(page, "1-landing")
        page.get_by_role("link", name="This isn't me").click()
        checked.page(page, "2-not-me")
        page.get_by_role("button", name="Yes, this isn't me").click()
        assert page.get_by_role("heading", name="Thank you").is_visible()
        assert page.locator("main a, main form").count() == 0  # nothing else on offer
        checked.page(page, "3-told")
        page.goto(link)
        assert page.get_by_role("heading", name="This link doesn't work").is_visible()
    assert Invite.get(Invite.client == client).revoked_at is not None
    notice = Message.get(Message.kind == "notice_not_me")
    assert notice.body.startswith("Someone who opened the link in the text sent to Maria "
                                  "Gonzalez says it isn't them.")
    checked.assert_clean()


def test_no_sandbox_hint_with_another_provider_and_the_firm_on_every_page(
        sqlite_database, tmp_path, browser):
    checked = Checked("provider")
    with served(tmp_path, BANK_PROVIDER="tests.form_provider:QuietFormProvider"):
        _, link = invited(banks=["Chase"])
        page = phone(browser)
        page.goto(link)
        page.get_by_role("button", name="Accept and continue").click()
        page.get_by_role("link", name="Add a bank").click()
        assert page.locator("header .firm").inner_text() == "Smith & Co"
        page.get_by_role("link", name="Chase").click()
        assert page.get_by_label("Chase username").is_visible()
        assert "Sandbox" not in page.content() and "user_good" not in page.content()
        assert page.locator("header .firm").inner_text() == "Smith & Co"
        checked.page(page, "1-bank-login")
        page.get_by_label("Chase username").fill("user_mfa")
        page.get_by_label("Password").fill("pass_good")
        page.get_by_role("button", name="Connect").click()
        assert page.get_by_label("One-time code").is_visible()
        assert page.locator("header .firm").inner_text() == "Smith & Co"
        checked.page(page, "2-bank-code")
    checked.assert_clean()
