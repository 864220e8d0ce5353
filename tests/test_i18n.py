"""One catalogue, English and Spanish: every client-facing word (texts, emails, pages)
comes from it; a Spanish-speaking client reads Spanish everywhere, each text still
within two GSM-7 segments; the client's language is theirs, else the firm's. Also
the firm's settings, from the command line and from Slack."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from core.firms import firm_settings, firms
from core.invitations import client_texts, clients, invites, links
from core.messaging import outbox, sms_encoding, templates
from core.platform import i18n, tokens
from core.platform.errors import InvalidInput
from core.records import Client, Event, Message
from tests.helpers import app_without_redis, csrf

ROOT = Path(__file__).resolve().parents[1]
NY = ZoneInfo("America/New_York")
MARIA = "+12125550134"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "translate": (2,),
            "ntranslate": (2, 3)}


def extracted() -> set:
    """Every message the code and the templates mark (as `pybabel extract -F babel.cfg`)."""
    method_map = [("core/**.py", "python"), ("web/**.py", "python"),
                  ("web/templates/**.html", "jinja2")]
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, keywords=KEYWORDS):
        found.add(message)
    return found


def test_every_marked_word_has_its_spanish_with_the_same_fields():
    with (ROOT / "core/translations/es/LC_MESSAGES/messages.po").open("rb") as source:
        catalog = read_po(source)
    spanish = {m.id: m.string for m in catalog if m.id}
    missing = []
    for message in extracted():
        key = message  # a plural is (singular, plural), as in the catalogue
        said = spanish.get(key)
        if not said or (isinstance(said, tuple) and not all(said)):
            missing.append(key)
            continue
        english = " ".join(message) if isinstance(message, tuple) else message
        ours = " ".join(said) if isinstance(said, tuple) else said
        assert set(re.findall(r"%\(\w+\)", english)) == set(re.findall(r"%\(\w+\)", ours)), key
    assert missing == [], ("update core/translations (README, 'Languages'): "
                           f"{len(missing)} without Spanish, e.g. {missing[:3]}")


def test_languages_are_parsed_as_people_type_them():
    assert [i18n.parse(w) for w in ("es", "ES", "Spanish", "español", " en ", "English")] == \
        ["es", "es", "es", "es", "en", "en"]
    with pytest.raises(InvalidInput, match="not a language we ship: en .English., es"):
        i18n.parse("klingon")


def spanish_text(firm="Smith & Co", first="María", purpose="connect",
                 link="https://connect.example.com/i/" + "A" * 22, name=""):
    return templates.InviteText(firm=firm, first_name=first, link=link,
                                expires_at=datetime(2026, 11, 28, 20, 15, tzinfo=UTC), tz=NY,
                                purpose=purpose, language="es", name=name)


REALISTIC = [("Smith & Co", "María"), ("Gonzalez-Whitfield Tax Advisor", "Maria-Alejandra Sofi"),
             ("Martínez y Asociados Contadores", "José Luis"), ("Muñoz & Peña CPA", "Begoña"),
             ("F" * 40, "N" * 20)]
LINKS = ["https://ls.example.co/i/" + "A" * 22, "https://connect.example.com/i/" + "A" * 22,
         "https://connect.ledgersync.com/i/" + "A" * 22]


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("firm,first", REALISTIC)
@pytest.mark.parametrize("purpose", ["connect", "reconnect"])
def test_spanish_texts_stay_within_two_gsm7_segments(firm, first, link, purpose, time_machine):
    time_machine.move_to(datetime(2026, 11, 23, 15, tzinfo=UTC), tick=False)
    t = spanish_text(firm, first, purpose, link)
    for kind in ("invite", "reminder"):
        rendered = templates.render(kind, "sms", t)
        assert rendered.encoding == "GSM-7" and sms_encoding.is_gsm7(rendered.body), rendered.body
        assert rendered.segments <= templates.MAX_SMS_SEGMENTS, rendered.body
        assert link in rendered.body and "sab 28 nov 15:15" in rendered.body
    if len(firm) <= 30:  # a realistic firm name: one segment
        assert templates.invite_sms(t).segments == templates.reminder_sms(t).segments == 1
    answers = [templates.stopped_sms(firm, "es"), templates.resumed_sms(firm, "es"),
               templates.new_link_sms(firm, True, "es"), templates.question_ack_sms(firm, "es"),
               templates.help_sms(firm, "soporte@ledgersync.com", "es",
                                  sign_in="https://connect.ledgersync.com/account/sign-in"),
               templates.signin_code_sms("123456", "connect.ledgersync.com", "es")]
    for answer in answers:
        assert answer.encoding == "GSM-7" and answer.segments <= 2, answer.body


def test_spanish_words_read_right(time_machine):
    time_machine.move_to(datetime(2026, 11, 23, 15, tzinfo=UTC), tick=False)
    invite = templates.invite_sms(spanish_text(link=LINKS[0]))
    assert invite.body == ("Hola Maria, Smith & Co le invita a conectar su banco: "
                           "https://ls.example.co/i/AAAAAAAAAAAAAAAAAAAAAA hasta el "
                           "sab 28 nov 15:15. Responda STOP para cancelar.")
    assert (invite.encoding, invite.segments) == ("GSM-7", 1)
    assert templates.stopped_sms("Smith & Co", "es").body == (
        "Ya no recibira textos de Smith & Co via LedgerSync. Responda START para recibirlos "
        "de nuevo.")
    email = templates.invite_email(spanish_text(name="María López"))
    assert email.subject == "Smith & Co le invita a conectar sus cuentas bancarias"
    assert email.body.startswith("Hola, María:\n\nSmith & Co usa LedgerSync para llevar su "
                                 "contabilidad al día")
    assert "vence el sáb 28 nov 15:15" in email.body
    assert '<html lang="es">' in email.html and "O copie este enlace en su navegador:" in \
        email.html


# --- a Spanish-speaking client, end to end -----------------------------------------------


@pytest.fixture
def app(database, twilio_settings):
    return app_without_redis()


@pytest.fixture
def smith(database):
    return firms.create("Smith & Co", admin_email="ann@smith.example",
                        admin_password="correct horse battery")


def test_a_spanish_speaking_client_reads_spanish_everywhere(clock, app, twilio, smith):
    maria = clients.add(smith, "María González", phone="(212) 555-0134",
                        email="maria@example.com", language="es")
    sent = invites.send(maria, "sms")
    text = twilio.sent(MARIA)[-1]
    assert text.body.startswith("Smith & Co le invita a conectar su banco: ")  # 1 segment
    assert text.body.endswith("hasta el sab 28 nov 10:00. Responda STOP para cancelar.")
    assert text.segments == 1
    clock.shift(timedelta(minutes=2))
    invites.resend(maria, "email")
    email = outbox.text(Message.get(Message.channel == "email", Message.kind == "invite"))
    assert email.startswith("Hola, María:\n\nSmith & Co usa LedgerSync")
    token = tokens.unseal(invites.latest(maria).token_sealed)
    web = app.test_client()
    page = web.get(f"/i/{token}")  # an English browser: the client's language wins
    assert '<html lang="es">' in page.text and "Hola, María" in page.text
    assert "¿Qué es LedgerSync?" in page.text and "Aceptar y continuar" in page.text
    assert "Este enlace funciona hasta el <strong>sáb 28 nov, 10:02 EST</strong>" in page.text
    assert "Smith &amp; Co</span> <span class=\"via\">con LedgerSync" in page.text
    web.post(f"/i/{token}/accept", data={"csrf_token": csrf(page)})
    account = web.get("/i/account")
    assert "Sus conexiones bancarias" in account.text and "Agregar un banco" in account.text
    assert "Para volver más tarde" in account.text
    old = web.get(f"/i/{tokens.unseal(sent.invite.token_sealed)}")
    assert "Un enlace más reciente reemplazó a este" in old.text
    stop = client_texts.received(client_texts.Inbound("SMstop1", MARIA, "+15005550006", "STOP"))
    assert stop.text == ("Ya no recibira textos de Smith & Co via LedgerSync. Responda START "
                         "para recibirlos de nuevo.")
    assert Message.get(Message.kind == "answer_stopped").segments == 1


def test_a_spanish_client_gets_the_sign_in_code_and_help_in_spanish(app, twilio, smith):
    maria = clients.add(smith, "María González", phone="(212) 555-0134", language="es")
    links.accept(tokens.unseal(invites.send(maria, "sms").invite.token_sealed))
    web = app.test_client()
    page = web.get("/account/sign-in", headers={"Accept-Language": "es-MX,es;q=0.9"})
    assert "Entre a su cuenta" in page.text and "Enviarme un código" in page.text
    web.post("/account/sign-in", data={"csrf_token": csrf(page), "address": MARIA})
    code = twilio.sent(MARIA)[-1]
    assert "es su codigo para entrar en LedgerSync" in code.body and code.segments == 1
    helped = client_texts.received(client_texts.Inbound("SMhelp9", MARIA, "+15005550006", "HELP"))
    assert helped.text.startswith("Smith & Co usa LedgerSync para pedirle")
    assert "Para entrar: https://connect.example.com/account/sign-in " in helped.text
    assert sms_encoding.measure(helped.text).count <= 2


def test_a_page_in_the_visitors_choice_of_language(app, smith):
    web = app.test_client()
    english = web.get("/account/sign-in")
    assert '<html lang="en">' in english.text
    assert '<button type="submit" name="lang" value="es" lang="es" class="link">Español' in \
        english.text  # the switch: a form (with the CSRF token), never a GET that changes
    spanish = web.get("/account/sign-in?lang=es")  # a link that asks for a language still does
    assert '<html lang="es">' in spanish.text and 'value="en" lang="en" class="link">English' in \
        spanish.text
    assert "Entre a su cuenta" in web.get("/account/sign-in").text  # remembered
    switched = web.post("/i/account/language", data={
        "csrf_token": csrf(spanish), "lang": "en", "next": "/account/sign-in"})
    assert switched.status_code == 302 and switched.headers["Location"] == "/account/sign-in"
    assert "Sign in to your account" in web.get("/account/sign-in").text


def test_the_clients_language_defaults_to_the_firms(database, smith):
    maria = clients.add(smith, "Maria Gonzalez", phone="(212) 555-0134")
    assert i18n.of_client(maria) == "en"
    firm_settings.set_setting(smith, "language", "Spanish")
    assert i18n.of_client(Client.get_by_id(maria.id)) == "es"
    clients.update(maria, language="en")
    assert i18n.of_client(Client.get_by_id(maria.id)) == "en"


def test_a_csv_import_sets_each_clients_language(database, smith):
    report = clients.import_csv(smith, "name,phone,language\nAna Ruiz,(212) 555-0101,es\n"
                                       "Bo Chen,(212) 555-0102,\nCy Dee,(212) 555-0103,fr\n")
    assert [(r.name, r.outcome) for r in report.rows] == [
        ("Ana Ruiz", "added"), ("Bo Chen", "added"), ("Cy Dee", "rejected")]
    assert "not a language we ship" in report.rows[2].reason
    assert [(c.name, c.language) for c in Client.select().order_by(Client.name)] == [
        ("Ana Ruiz", "es"), ("Bo Chen", None)]
    again = clients.import_csv(smith, "name,language\nBo Chen,Spanish\n")
    assert again.rows[0].outcome == "updated"
    assert Client.get(Client.name == "Bo Chen").language == "es"


# --- the firm's settings -------------------------------------------------------------------


def test_firm_settings_are_checked(database, smith):
    set_ = firm_settings.set_setting
    for value in ("http://smith.example/logo.png", "javascript:alert(1)",
                  "https://smith.example/a logo.png", "https://user@smith.example/x.png"):
        with pytest.raises(InvalidInput):
            set_(smith, "logo_url", value)
    for value in ("red", "#12345", "#ggg", "1d4ed8;}"):
        with pytest.raises(InvalidInput):
            set_(smith, "brand_color", value)
    with pytest.raises(InvalidInput, match="not a firm setting"):
        set_(smith, "name", "Evil Co")
    assert set_(smith, "colour", "#17C").brand_color == "#1177cc"
    assert set_(smith, "phone", "(212) 555-0100").contact_phone == "+12125550100"
    assert set_(smith, "email", "Office@Smith.example").contact_email == "Office@smith.example"
    assert set_(smith, "logo", "https://smith.example/logo.png").logo_url == \
        "https://smith.example/logo.png"
    assert set_(smith, "logo_url", "none").logo_url is None
    assert Event.select().where(Event.kind == "firm.setting_changed").count() == 5
    assert firm_settings.header_text_color("#ffff00") == "#000000"
    assert firm_settings.header_text_color("#1e3a8a") == "#ffffff"


def test_firm_set_from_slack_is_for_admins(slack, sqlite_database):
    from core.firms import access
    from tests.slack_fixtures import slack_app
    from tests.slack_requests import command, said
    from tests.slack_standin import TEAM

    web = slack_app(slack)
    firm = firms.create("Smith & Co", admin_email="ann@smith.example",
                        admin_password="correct horse 1")
    firms.add_staff(firm, "bob@smith.example", "correct horse 2", role="staff")
    assert access.connect(TEAM, "UANN", "ann@smith.example", "correct horse 1").ok
    assert access.connect(TEAM, "UBOB", "bob@smith.example", "correct horse 2").ok
    clients.add(firm, "Maria Gonzalez", phone="2125550134")
    command(web, slack, "firm set logo_url <https://smith.example/logo.png>")
    assert "logo_url` is now https://smith.example/logo.png" in said(slack)
    command(web, slack, "firm set brand_color #0a7d4f", user="UBOB")
    assert "the staff role can't change the firm's settings" in said(slack, 2)
    command(web, slack, "firm set email <mailto:office@smith.example|office@smith.example>")
    assert "`email` is now office@smith.example" in said(slack, 3)
    command(web, slack, "language maria es", user="UBOB")
    assert "*Maria Gonzalez* gets texts, emails and pages in Espa" in said(slack, 4)
    command(web, slack, "firm")
    assert "`brand_color` (none)" in said(slack, 5)
    assert firm.refreshed().logo_url == "https://smith.example/logo.png"
    assert Client.get().language == "es"


def test_firm_set_and_client_language_from_the_command_line(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "SECRET_KEY": "cli-test-secret", "REDIS_URL": "redis://127.0.0.1:1/0"}

    def run(*args, ok=True, stdin=None):
        done = subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=tmp_path,
                              input=stdin, capture_output=True, text=True, timeout=60)
        assert "Traceback" not in done.stderr and (done.returncode == 0) is ok, done.stderr
        return done.stdout + done.stderr

    run("db", "upgrade")
    run("firm", "create", "Smith & Co", "--admin-email", "ann@smith.example",
        "--admin-password-stdin", stdin="correct horse 1\n")
    assert "brand_color is now #0a7d4f" in run("firm", "set", "brand_color", "#0A7D4F")
    assert "must start with https://" in run("firm", "set", "logo_url", "http://x.example/l.png",
                                             ok=False)
    assert "Added" in run("clients", "add", "Ana Ruiz", "--phone", "2125550101",
                          "--language", "es")
    assert "Ana Ruiz reads English (en)." in run("clients", "language", "ana", "en")
    assert "logo_url     (none)\nbrand_color  #0a7d4f" in run("firm", "set")
