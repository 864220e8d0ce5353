"""The client's pages, issue #26, through the real Flask app (test client), on SQLite and
PostgreSQL: the client's language wherever the client is known (signed out too), the
language switch on every page (a form: signed in, the account keeps the choice), the
provider's words in the client's language, the expiry's day, time and zone, "You're
done" after a bank connects, the firm's phone in the footer, a labelled sign-in link,
and a page view that leaves the browser's session alone."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from core import ports
from core.firms import firm_settings, firms
from core.invitations import clients, invites
from core.platform import i18n, tokens
from core.records import BankAccount, Client, Event
from tests.helpers import app_without_redis, csrf

ENGLISH_PHONE = {"Accept-Language": "en-US,en;q=0.9"}


@pytest.fixture
def app(database):
    return app_without_redis()


@pytest.fixture
def smith(database):
    firm = firms.create("Smith & Co", admin_email="ann@smith.example",
                        admin_password="correct horse battery")
    firm_settings.set_setting(firm, "phone", "(212) 555-0100")
    firm_settings.set_setting(firm, "email", "office@smith.example")
    return firm


def invite(firm, name="María González", phone="2125550134", **fields):
    client = clients.add(firm, name, phone=phone, banks=["Chase"], **fields)
    sent = invites.send(client, "sms")
    return client, tokens.unseal(sent.invite.token_sealed)


def accept(web, token):
    page = web.get(f"/i/{token}", headers=ENGLISH_PHONE)
    return web.post(f"/i/{token}/accept", data={"csrf_token": csrf(page)}, headers=ENGLISH_PHONE)


def main_of(page) -> str:
    return page.text.split('<main id="main">')[1].split("</main>")[0]


def switch_to(web, page, lang: str, back: str | None = None):
    data = {"csrf_token": csrf(page), "lang": lang}
    if back is not None:
        data["next"] = back
    return web.post("/i/account/language", data=data, headers=ENGLISH_PHONE)


# --- the client's language, signed out too --------------------------------------------------


def test_signed_out_pages_follow_the_clients_language_not_the_browsers(app, smith):
    maria, token = invite(smith, language="es")
    web = app.test_client()
    accept(web, token)
    account = web.get("/i/account", headers=ENGLISH_PHONE)
    assert "Sus conexiones bancarias" in account.text
    out = web.post("/i/account/sign-out", data={"csrf_token": csrf(account)},
                   headers=ENGLISH_PHONE)
    assert out.status_code == 302 and out.headers["Location"] == "/i/signed-out"
    signed_out = web.get("/i/signed-out", headers=ENGLISH_PHONE)
    assert '<html lang="es">' in signed_out.text and "Cerró sesión" in signed_out.text
    assert "Entre a su cuenta" in web.get("/account/sign-in", headers=ENGLISH_PHONE).text
    again = web.get("/i/account", headers=ENGLISH_PHONE)
    assert again.status_code == 403 and "Vuelva a entrar" in again.text
    # Not a choice: the next client to sign in on this phone reads their own language.
    _, bob = invite(smith, "Bob Stone", "2125550188")
    accept(web, bob)
    assert "Your bank connections" in web.get("/i/account", headers=ENGLISH_PHONE).text
    assert Client.get_by_id(maria.id).language == "es"


def test_a_switch_on_a_signed_in_page_is_kept_by_the_account(app, smith):
    maria, token = invite(smith)  # no language of her own: the firm's, English
    web = app.test_client()
    accept(web, token)
    account = web.get("/i/account", headers=ENGLISH_PHONE)
    assert '<form method="post" action="/i/account/language">' in account.text
    switched = switch_to(web, account, "es", "/i/account")
    assert switched.status_code == 302 and switched.headers["Location"] == "/i/account"
    assert "Sus conexiones bancarias" in web.get("/i/account", headers=ENGLISH_PHONE).text
    assert Client.get_by_id(maria.id).language == "es"
    assert i18n.of_client(Client.get_by_id(maria.id)) == "es"  # her texts and emails too
    changed = Event.get(Event.kind == "client.updated")
    assert (changed.actor, changed.detail) == ("client", {"fields": ["language"]})
    switch_to(web, account, "es", "/i/account")  # the same again: nothing more recorded
    assert Event.select().where(Event.kind == "client.updated").count() == 1


def test_a_choice_on_the_link_page_is_kept_when_the_client_accepts(app, smith):
    maria, token = invite(smith)
    web = app.test_client()
    link = web.get(f"/i/{token}", headers=ENGLISH_PHONE)
    assert "Accept and continue" in link.text
    switched = switch_to(web, link, "es", f"/i/{token}")
    assert switched.headers["Location"] == f"/i/{token}"
    link = web.get(f"/i/{token}", headers=ENGLISH_PHONE)
    assert "Aceptar y continuar" in link.text
    assert Client.get_by_id(maria.id).language is None  # nothing stored before accepting
    web.post(f"/i/{token}/accept", data={"csrf_token": csrf(link)}, headers=ENGLISH_PHONE)
    assert Client.get_by_id(maria.id).language == "es"


def test_the_switch_is_a_safe_form_that_stays_on_our_site(app, smith):
    maria, token = invite(smith)
    web = app.test_client()
    accept(web, token)
    page = web.get("/i/account", headers=ENGLISH_PHONE)
    refused = web.post("/i/account/language", data={"lang": "es", "next": "/i/account"})
    assert refused.status_code == 400  # no CSRF token
    assert web.get("/i/account/language?lang=es").status_code == 405  # a GET changes nothing
    for elsewhere in ("https://evil.example/", "//evil.example/i/account", "/\\evil.example",
                      "javascript:alert(1)", "/outbox"):
        sent = switch_to(web, page, "en", elsewhere)
        assert sent.status_code == 302 and sent.headers["Location"] == "/i/account", elsewhere
    assert switch_to(web, page, "fr", "/i/account").status_code == 302
    assert Client.get_by_id(maria.id).language is None  # only en (hers already) and fr: none
    stranger = app.test_client()
    sign_in = stranger.get("/account/sign-in", headers=ENGLISH_PHONE)
    chosen = switch_to(stranger, sign_in, "es")
    assert chosen.headers["Location"] == "/account/sign-in"  # no page named: the sign-in
    assert not Event.select().where(Event.kind == "client.updated").exists()


def test_the_switch_is_on_every_page_and_comes_back_to_it(app, smith):
    maria, token = invite(smith, language="es")
    web = app.test_client()
    pages = [web.get(f"/i/{token}"), web.get("/account/sign-in"), web.get("/i/signed-out"),
             web.get("/i/account")]
    stale = web.post(f"/i/{token}/accept")  # no CSRF token: 400, in her language
    assert stale.status_code == 400 and f'name="next" value="/i/{token}"' in stale.text
    accept(web, token)
    pages += [web.get(path) for path in ("/i/account", "/i/account/add?q=chase",
                                         "/i/account/add/chase")]
    pages += [app.test_client().get(f"/i/{token}"), web.get("/i/account/restore/999")]
    assert "ya se usó" in pages[7].text  # the used link, elsewhere: in her language
    for page in pages:
        assert 'action="/i/account/language"' in page.text, page.request.path
        assert '<button type="submit" name="lang" value="en" lang="en"' in page.text
    assert 'name="next" value="/i/account/add?q=chase"' in pages[5].text
    assert 'name="next" value="/i/account/restore/999"' in pages[8].text  # a 404, in Spanish
    assert pages[8].status_code == 404 and "No encontrado" in pages[8].text


# --- the provider's words, the expiry ---------------------------------------------------------


def test_the_sandbox_speaks_the_clients_language(app, smith):
    _, token = invite(smith, language="es")
    web = app.test_client()
    accept(web, token)
    form = web.get("/i/account/add/chase", headers=ENGLISH_PHONE)

    def send(**fields):
        return web.post("/i/account/add/chase", data={"csrf_token": csrf(form), **fields},
                        headers=ENGLISH_PHONE)

    wrong = send(username="maria", password="nope")
    assert wrong.status_code == 422
    assert "Chase no aceptó ese usuario o contraseña. Revíselos e inténtelo de nuevo." in wrong.text
    mfa = send(username="user_mfa", password="pass_good")
    assert "Chase envió un código a su teléfono." in mfa.text
    challenge = re.search(r'name="challenge" value="([^"]+)"', mfa.text).group(1)
    assert "Ese código no es correcto; inténtelo de nuevo." in send(
        challenge=challenge, code="0000").text
    assert "Ese código venció; empiece de nuevo." in send(challenge="stale", code="1234").text
    for page in (wrong, mfa):
        assert "did not accept" not in page.text and "sent a code" not in page.text


def test_the_expiry_gives_the_day_the_time_and_the_zone():
    at = datetime(2026, 12, 7, 5, 30, tzinfo=UTC)
    pacific = ZoneInfo("America/Los_Angeles")
    assert i18n.date_time_zone(at, pacific) == "Sun 6 Dec, 9:30 PM PST"
    assert i18n.date_time_zone(at, pacific, "es") == "dom 6 dic, 21:30 PST"
    assert i18n.date_time_zone(at, ZoneInfo("America/New_York")) == "Mon 7 Dec, 12:30 AM EST"
    assert i18n.date_time_zone(datetime(2026, 7, 1, 16, 5, tzinfo=UTC),
                               ZoneInfo("America/Chicago"), "es") == "mié 1 jul, 11:05 CDT"
    assert i18n.date_time(at, pacific, "es") == "dom 6 dic 21:30"  # the texts' words, as before


def test_the_link_page_gives_the_expiry_in_the_clients_zone(app, smith, clock):
    _, token = invite(smith, "Lupe Ruiz", "4155550123", timezone="America/Los_Angeles",
                      language="es")
    page = app.test_client().get(f"/i/{token}", headers=ENGLISH_PHONE)
    assert "Este enlace funciona hasta el <strong>sáb 28 nov, 7:00 PST</strong>." in page.text


# --- the end of connecting ----------------------------------------------------------------------


def connect_chase(web):
    form = web.get("/i/account/add/chase")
    return web.post("/i/account/add/chase", data={"csrf_token": csrf(form),
                                                  "username": "user_good",
                                                  "password": "pass_good"})


@pytest.mark.parametrize("synced", [True, False], ids=["synced", "sync-queued"])
def test_after_connecting_the_client_sees_what_the_firm_can_now_see(app, smith, synced):
    if not synced:  # the sync waits for a worker: the page asks the provider itself
        ports.install(ports.current().with_(sync_runner=lambda connection_id: None))
    _, token = invite(smith)
    web = app.test_client()
    accept(web, token)
    connected = connect_chase(web)
    assert connected.status_code == 302 and connected.headers["Location"] == "/i/account/done"
    done = web.get("/i/account/done")
    accounts = {a.name: a.mask for a in BankAccount.select()}
    assert set(accounts) == {"Checking", "Savings"}
    text = main_of(done)
    assert "Chase is connected." in text and "<h1>You're done</h1>" in text
    assert (f"<li><strong>Chase</strong> Checking\u00a0••{accounts['Checking']}, "
            f"Savings\u00a0••{accounts['Savings']}</li>") in text
    assert "Smith &amp; Co can now see:" in text and "What happens next" in text
    assert "You can close this page." in text
    assert 'class="button secondary" href="/i/account/add">Add another bank' in text
    assert "primary" not in text
    account = main_of(web.get("/i/account"))
    assert "Add another bank" in account and "primary" not in account


def test_the_done_page_sends_back_to_the_account_while_something_is_left(app, smith):
    _, token = invite(smith)
    web = app.test_client()
    accept(web, token)
    assert web.get("/i/account/done").headers["Location"] == "/i/account"  # nothing yet
    assert "Add a bank</a>" in web.get("/i/account").text


# --- the footer, the session -----------------------------------------------------------------


def test_the_footer_offers_the_firms_phone_to_tap_and_a_labelled_sign_in_link(app, smith):
    _, token = invite(smith)
    web = app.test_client()
    accept(web, token)
    footer = web.get("/i/account").text.split("<footer>")[1]
    assert '<a href="tel:+12125550100">(212) 555-0100</a>' in footer
    assert '<a href="mailto:office@smith.example">office@smith.example</a>' in footer
    assert 'To come back later, <a href="/account/sign-in">sign in with a code</a>' in footer
    assert "http" not in re.sub(r"<[^>]+>", "", footer)  # no raw address to read
    dead = web.get("/i/" + "Q" * 22).text.split("<footer>")[1]
    assert "tel:" not in dead  # an unknown link names no firm


def test_a_page_view_signed_out_leaves_a_form_open_elsewhere_working(app, smith):
    web = app.test_client()
    form = web.get("/account/sign-in")  # one tab
    assert web.get("/i/account").status_code == 403  # another tab, signed out
    sent = web.post("/account/sign-in", data={"csrf_token": csrf(form),
                                              "address": "(212) 555-0199"})
    assert sent.status_code == 302 and sent.headers["Location"] == "/account/sign-in/code"


JINJA_CASES = [
    '{{ _("Accept and continue") }}',
    '{{ _("Hi %(name)s", name=who) }}',
    '{{ _("100%% yours") }}',
    '{{ _("100%% of %(name)s", name=who) }}',
    '{% trans %}<strong>{{ who }}</strong> invites you{% endtrans %}',
    '{% autoescape false %}{{ _("Hi %(name)s", name=who) }} {{ _("1%% <b>") }}'
    '{% endautoescape %}',
    '{{ ngettext("%(num)d connection needs restoring.", '
    '"%(num)d connections need restoring.", n) }}',
    '{% trans count=n %}{{ count }} bank{% pluralize %}{{ count }} banks{% endtrans %}',
]


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("source", JINJA_CASES)
def test_a_pages_words_are_what_jinjas_own_new_style_gettext_gives(sqlite_database, lang,
                                                                   source):
    """The pages' `_`, `gettext` and `ngettext` read the catalogue without Flask-Babel's
    lookups (web/locale.py): the same words, escaping and "%%" as Jinja's own."""
    from flask import g, render_template_string
    from jinja2 import Environment

    jinja = Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    catalogue = i18n.translations(lang)
    jinja.install_gettext_callables(catalogue.ugettext, catalogue.ungettext, newstyle=True)
    values = {"who": "<b>Ana & Co</b>", "n": 2}
    expected = jinja.from_string(source).render(**values)
    app = app_without_redis()
    with app.test_request_context("/i/x"):
        g.page_lang = lang  # (what the page's context has: `locale._languages`)
        assert render_template_string(source, **values) == expected
    with app.test_request_context("/i/x"):  # the context's word, as the busy page gives it
        assert render_template_string(source, page_lang=lang, **values) == expected
