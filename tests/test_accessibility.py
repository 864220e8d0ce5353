"""Every client page passes axe-core (the pinned copy in tests/axe/): no serious or
critical violation, in English and in Spanish, on a phone over https. The report of
each page is saved beside its screenshot (test-output/browser/https/a11y/axe/). The
pages the flows go through are checked in test_browser_account.py too; this test
visits the rest: every state a link can be in, the account's pages ("You're done"
included), every sign-in page and error, and the chooser."""

from __future__ import annotations

from datetime import timedelta

from core.firms import firms
from core.invitations import clients, invites, links
from core.messaging import optouts
from core.platform import clock, tokens
from core.records import BankConnection, Invite
from tests.browser_helpers import Checked, code_texted, invited, phone, served


def link_of(invite: Invite, base: str) -> str:
    return f"{base}/i/{tokens.unseal(invite.token_sealed)}"


def dead_links(firm, base: str) -> dict[str, str]:
    """A link in each state that doesn't work."""
    made = {}
    for n, state in enumerate(("expired", "superseded", "revoked", "used")):
        client = clients.add(firm, f"Dead {state}", phone=f"21255501{n + 60}")
        invite = invites.send(client, "sms").invite
        if state == "expired":
            Invite.update(expires_at=clock.now() - timedelta(minutes=1)).where(
                Invite.id == invite.id).execute()
        elif state == "superseded":
            Invite.update(sent_at=clock.now() - timedelta(hours=1)).where(
                Invite.id == invite.id).execute()
            invites.resend(client)
        elif state == "revoked":
            invites.revoke(client)
        else:
            links.accept(tokens.unseal(invite.token_sealed))
        made[state] = link_of(invite, base)
    made["unknown"] = f"{base}/i/{'Q' * 22}"
    return made


def visit(checked, page, url: str, name: str) -> None:
    page.goto(url)
    checked.page(page, name)


def test_every_client_page_passes_axe(sqlite_database, tmp_path, twilio, browser):
    checked = Checked("a11y")
    with served(tmp_path, twilio, PROXY_HOPS="1", PAGE_BUSY_AFTER="3s") as server:  # (busy)
        base = server.base
        maria, link = invited(banks=["Chase", "Ally Bank"])
        firm = maria.firm
        page = phone(browser)
        visit(checked, page, link, "link")
        page.get_by_role("button", name="Accept and continue").click()
        page.wait_for_url("**/i/account")
        checked.page(page, "account-empty")
        page.get_by_role("link", name="Add a bank").click()
        checked.page(page, "add-suggested")
        visit(checked, page, f"{base}/i/account/add?q=wells", "add-search")
        visit(checked, page, f"{base}/i/account/add?q=zzzz", "add-no-match")
        page.goto(f"{base}/i/account/add/chase")
        page.get_by_label("Chase username").fill("nobody")
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Connect").click()
        checked.page(page, "credentials-refused")
        page.get_by_label("Chase username").fill("user_good")
        page.get_by_label("Password").fill("pass_good")
        page.get_by_role("button", name="Connect").click()
        page.wait_for_url("**/i/account/done")
        checked.page(page, "done")
        BankConnection.create(client=maria, institution_id="ally-bank",
                              institution_name="Ally Bank", status="needs_reconnect")
        visit(checked, page, f"{base}/i/account", "account-connected-and-broken")

        dead = dead_links(firm, base)
        for state, url in dead.items():
            visit(checked, page, url, f"dead-{state}")
        page.goto(dead["expired"])
        page.get_by_role("button", name="Request a new link").click()
        checked.page(page, "asked")

        stranger = phone(browser)
        visit(checked, stranger, f"{base}/i/account", "signed-out-403")
        visit(checked, stranger, f"{base}/i/signed-out", "signed-out")
        visit(checked, stranger, f"{base}/account/sign-in", "sign-in")
        stranger.get_by_role("button", name="Send me a code").click()
        checked.page(stranger, "sign-in-problem")
        optouts.opt_out("+12125550177", "replied STOP")
        stranger.get_by_label("Mobile number or email").fill("(212) 555-0177")
        stranger.get_by_role("button", name="Send me a code").click()
        checked.page(stranger, "code-opted-out")

        jones = firms.create("Jones Tax", admin_email="jo@jones.example", admin_password="x" * 12)
        _, other = invited("Maria G.", firm=jones)
        second = phone(browser)
        second.goto(other)
        second.get_by_role("button", name="Accept and continue").click()
        chooser = phone(browser)
        chooser.goto(f"{base}/account/sign-in")
        chooser.get_by_label("Mobile number or email").fill("2125550134")
        chooser.get_by_role("button", name="Send me a code").click()
        chooser.get_by_label("6-digit code").fill(code_texted(twilio, "+12125550134"))
        chooser.get_by_role("button", name="Sign in").click()
        chooser.wait_for_url("**/account/sign-in/choose")
        checked.page(chooser, "chooser")

        spanish = clients.add(firm, "Lucía Pérez", phone="2125550155", language="es")
        sent = invites.send(spanish, "sms").invite
        es = phone(browser)
        visit(checked, es, link_of(sent, base), "es-link")
        es.get_by_role("button", name="Aceptar y continuar").click()
        es.wait_for_url("**/i/account")
        checked.page(es, "es-account")
        es.get_by_role("link", name="Agregar un banco").click()
        checked.page(es, "es-add")
        es.goto(f"{base}/i/account/add/chase")
        checked.page(es, "es-credentials")
        visit(checked, phone(browser), f"{base}/account/sign-in?lang=es", "es-sign-in")

        busy = {"en-US": "LedgerSync is busy", "es-MX": "LedgerSync está ocupado"}
        for lang, heading in busy.items():  # (web/busy.py: the proxy stamped it 10 s ago)
            late = phone(browser, locale=lang)
            late.set_extra_http_headers({"X-Request-Start": f"t={clock.now().timestamp() - 10}"})
            visit(checked, late, link, f"{lang}-busy")
            assert late.get_by_role("heading", level=1).inner_text() == heading
    checked.assert_clean()


def test_the_check_finds_what_it_should(browser):
    """The harness itself: a page with a nameless button and grey-on-grey text fails."""
    page = phone(browser)
    page.set_content('<html lang="en"><head><meta name="viewport" content="width=device-width">'
                     '</head><body><main><button></button>'
                     '<p style="color:#bbb;background:#ccc">faint</p></main></body></html>')
    bad = Checked("a11y-self-check").page(page, "bad")
    assert {v["rule"] for v in bad} >= {"button-name", "color-contrast"}
