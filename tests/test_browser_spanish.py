"""Issue #26 in headless Chromium, over https under gunicorn as the Procfile runs it:

- the landing page's one action, *Accept and continue*, is in view without scrolling
  on common phones (390×844 and 360×640), in English and Spanish, with the firm's
  logo, its colour and the inviter's name, and the trust section below it;
- a Spanish client on a phone set to English walks the whole flow — the link, accepting,
  adding a bank with a wrong password, the bank's code, a wrong code, an expired code,
  "You're done", signing out, the used link, signing in again with a texted code — and
  reads no word that isn't in the Spanish catalogue (or a name: the firm's, hers, the
  bank's and its accounts'), on any page, in the switch's place or in the email and
  texts she gets. Each page is screenshotted and checked with axe.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from babel.dates import get_day_names, get_month_names
from babel.messages.pofile import read_po

from core.firms import firm_settings, firms
from core.invitations import clients, invites
from core.messaging import outbox
from core.platform import config, i18n, tokens
from core.records import Message
from tests.browser_helpers import SHOTS, Checked, png, served

ROOT = Path(__file__).resolve().parents[1]
PHONES = [{"width": 390, "height": 844}, {"width": 360, "height": 640}]
MARIA = "+12125550134"
LOGO = "https://logo.smith.example/logo.png"
# What a page says that isn't ours to translate: names (the firm's, the client's, the
# bank's, LedgerSync's), addresses, and the account names the bank gives.
NAMES = "Smith & Co María González Chase Checking Savings LedgerSync"
TEXT_NODES = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, element = node.parentElement;
    if (!element || !node.textContent.trim()) continue;
    const style = getComputedStyle(element);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    if (element.closest('[lang]').lang !== document.documentElement.lang) continue;
    out.push(node.textContent.trim());
  }
  for (const element of document.querySelectorAll('[placeholder],[aria-label],[alt],[title]'))
    for (const name of ['placeholder', 'aria-label', 'alt', 'title'])
      if (element.getAttribute(name)) out.push(element.getAttribute(name));
  out.push(document.title);
  return out;
}"""


def plain(text: str) -> str:
    """Lower case, without accents (a text loses them in GSM-7), tags or fields."""
    text = re.sub(r"<[^>]+>|%\(\w+\)s|%\(num\)d", " ", text)
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold())
                   if not unicodedata.combining(c))


def words(text: str) -> set[str]:
    return set(re.findall(r"[^\W\d_]+", plain(text)))


def spanish_catalogue() -> set[str]:
    with (ROOT / "core/translations/es/LC_MESSAGES/messages.po").open("rb") as source:
        catalog = read_po(source)
    found = set()
    for message in catalog:
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for said in strings:
            found |= words(said or "")
    return found


def spanish_dates(*zones: str) -> set[str]:
    """The words of a date in Spanish (Babel's days and months, as `i18n.short_date`
    writes them) and the zones' abbreviations."""
    days = get_day_names("abbreviated", locale="es").values()
    months = get_month_names("abbreviated", locale="es").values()
    return words(" ".join([*days, *months, *zones]))


class Reader:
    """Everything a Spanish reader sees, word by word, against the catalogue."""

    def __init__(self, *extra: str):
        self.known = (spanish_catalogue() | spanish_dates("EST", "EDT")
                      | words(" ".join([NAMES, *i18n.LANGUAGES.values(), *extra])))
        self.unknown: dict[str, set[str]] = {}

    def strange(self, texts: list[str]) -> set[str]:
        kept = [re.sub(r"https?://\S+|\S+@\S+|@\S+", " ", t) for t in texts]
        return words(" ".join(kept)) - self.known

    def reads(self, name: str, texts: list[str]) -> None:
        strange = self.strange(texts)
        if strange:
            self.unknown[name] = strange

    def page(self, checked: Checked, page, name: str) -> None:
        assert page.locator("html").get_attribute("lang") == "es", name
        assert page.locator("nav.langs button", has_text="English").count() == 1, name
        checked.page(page, name)
        self.reads(name, page.evaluate(TEXT_NODES))


def test_the_reader_finds_english():
    """The check itself: English words are found, Spanish and names are not."""
    reader = Reader()
    assert {"code", "right", "again"} <= reader.strange(["That code is not right; try again."])
    assert reader.strange(["Ese código no es correcto; inténtelo de nuevo.",
                           "Smith & Co con LedgerSync", "Chase Checking ••1234"]) == set()


def test_a_spanish_client_reads_no_english_from_link_to_signing_in_again(
        sqlite_database, tmp_path, twilio, browser):
    checked = Checked("spanish")
    firm = firms.create("Smith & Co", admin_email="a@s.example", admin_password="x" * 12)
    for setting, value in (("phone", "(212) 555-0100"), ("email", "office@smith.example"),
                           ("brand_color", "#0a7d4f")):
        firm_settings.set_setting(firm, setting, value)
    with served(tmp_path, twilio) as server:
        maria = clients.add(firm, "María González", phone="2125550134", banks=["Chase"],
                            email="maria@example.com", language="es")
        sent = invites.send(maria, "email").invite
        link = f"{server.base}/i/{tokens.unseal(sent.token_sealed)}"
        reader = Reader(config.settings().support_email)
        context = browser.new_context(viewport=PHONES[0], is_mobile=True, has_touch=True,
                                      ignore_https_errors=True, locale="en-US")
        page = context.new_page()
        _link_to_done(page, link, checked, reader)
        _sign_out_and_in_again(page, link, checked, reader, twilio)
    emails = list(Message.select().where(Message.to_addr == "maria@example.com"))
    texts = twilio.sent(MARIA)
    assert [m.kind for m in emails] == ["invite"] and len(texts) == 1  # the invite, the code
    for email in emails:
        reader.reads("invite email", [email.subject, outbox.text(email)])
    reader.reads("sign-in code text", [t.body for t in texts])
    assert reader.unknown == {}, reader.unknown
    checked.assert_clean()


def _link_to_done(page, link, checked, reader) -> None:
    page.goto(link)
    reader.page(checked, page, "01-link")
    page.get_by_role("button", name="Aceptar y continuar").click()
    page.wait_for_url("**/i/account")
    reader.page(checked, page, "02-account")
    page.get_by_role("link", name="Agregar un banco").click()
    reader.page(checked, page, "03-add")
    page.get_by_role("link", name="Chase").click()
    reader.page(checked, page, "04-bank-login")
    _log_in(page, "maria", "nope")
    assert page.get_by_text("Chase no aceptó ese usuario o contraseña").is_visible()
    reader.page(checked, page, "05-wrong-password")
    _log_in(page, "user_mfa", "pass_good")
    assert page.get_by_text("Chase envió un código a su teléfono.").is_visible()
    reader.page(checked, page, "06-bank-code")
    _code(page, "0000")
    assert page.get_by_text("Ese código no es correcto; inténtelo de nuevo.").is_visible()
    reader.page(checked, page, "07-wrong-code")
    page.locator("input[name=challenge]").evaluate("input => input.value = 'stale'")
    _code(page, "1234")
    assert page.get_by_text("Ese código venció; empiece de nuevo.").is_visible()
    reader.page(checked, page, "08-expired-code")
    _log_in(page, "user_mfa", "pass_good")
    _code(page, "1234")
    page.wait_for_url("**/i/account/done")
    assert page.get_by_role("heading", name="¡Listo!").is_visible()
    assert page.get_by_text("Smith & Co ahora puede ver:").is_visible()
    assert page.get_by_text(re.compile(r"Checking\s••\d{4}, Savings\s••\d{4}")).is_visible()
    reader.page(checked, page, "09-done")


def _sign_out_and_in_again(page, link, checked, reader, twilio) -> None:
    page.get_by_role("link", name="Ver sus conexiones").click()
    reader.page(checked, page, "10-account-connected")
    page.get_by_role("button", name="Salir").click()
    page.wait_for_url("**/i/signed-out")
    reader.page(checked, page, "11-signed-out")
    page.goto(link)
    reader.page(checked, page, "12-used-link")
    page.get_by_role("link", name="Entrar con un código").click()
    reader.page(checked, page, "13-sign-in")
    page.get_by_label("Número de celular o correo").fill("(212) 555-0134")
    page.get_by_role("button", name="Enviarme un código").click()
    page.wait_for_url("**/account/sign-in/code")
    reader.page(checked, page, "14-sign-in-code")
    texted = twilio.wait_for(1, to=MARIA)[-1].body
    assert texted.startswith(re.match(r"\d{6}", texted).group(0) + " es su codigo"), texted
    page.get_by_label("Código de 6 dígitos").fill(texted[:6])
    page.get_by_role("button", name="Entrar").click()
    page.wait_for_url("**/i/account")
    reader.page(checked, page, "15-signed-in-again")


def _log_in(page, username: str, password: str) -> None:
    page.get_by_label("Usuario de Chase").fill(username)
    page.get_by_label("Contraseña").fill(password)
    page.get_by_role("button", name="Conectar").click()


def _code(page, code: str) -> None:
    page.get_by_label("Código de un solo uso").fill(code)
    page.get_by_role("button", name="Conectar").click()


# --- the one action in view ---------------------------------------------------------------


def test_accept_is_in_view_without_scrolling_on_common_phones(sqlite_database, tmp_path,
                                                               browser):
    shots = SHOTS / "accept-in-view"
    shots.mkdir(parents=True, exist_ok=True)
    firm = firms.create("Smith & Co", admin_email="a@s.example", admin_password="x" * 12)
    ann = firms.add_staff(firm, "ann@smith.example", "y" * 12, name="Ann Lee")
    for setting, value in (("logo_url", LOGO), ("brand_color", "#0a7d4f"),
                           ("phone", "(212) 555-0100")):
        firm_settings.set_setting(firm, setting, value)
    with served(tmp_path) as server:
        links = {}
        for lang, name, number in (("en", "Maria Gonzalez", "2125550134"),
                                   ("es", "Lucía Pérez", "2125550135")):
            client = clients.add(firm, name, phone=number, language=lang)
            invite = invites.send(client, "sms", by=ann).invite
            links[lang] = f"{server.base}/i/{tokens.unseal(invite.token_sealed)}"
        for size in PHONES:
            for lang, accept in (("en", "Accept and continue"), ("es", "Aceptar y continuar")):
                _accept_in_view(browser, size, links[lang], accept,
                                shots / f"{size['width']}x{size['height']}-{lang}.png")


def _accept_in_view(browser, size: dict, link: str, accept: str, shot: Path) -> None:
    context = browser.new_context(viewport=size, is_mobile=True, has_touch=True,
                                  ignore_https_errors=True)
    page = context.new_page()
    page.route("https://logo.smith.example/**",
               lambda route: route.fulfill(body=png(), content_type="image/png"))
    page.goto(link)
    page.screenshot(path=shot)  # what the phone shows before any scrolling
    assert page.evaluate("window.scrollY") == 0
    button = page.get_by_role("button", name=accept).bounding_box()
    where = f"{accept} at {size}: {button}"
    assert button["y"] >= 0 and button["y"] + button["height"] <= size["height"], where
    assert button["x"] >= 0 and button["x"] + button["width"] <= size["width"], where
    for below in ("section.trust", "section.check"):
        assert page.locator(below).bounding_box()["y"] >= button["y"] + button["height"], below
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    context.close()
