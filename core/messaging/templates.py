"""Every word we send to a client, in one place, in the client's language: each
wording is a message of the one catalogue (`core/platform/i18n.py`), whole, so that a
translation can order its words as it needs.

SMS texts are kept GSM-7 (names transliterated, or UCS-2 when a name isn't in a
Latin, Greek or Cyrillic alphabet) and in as few segments as the wording allows:
the invite and the reminder fall back to shorter wording when long names or a
long link would need a second segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import partial
from pathlib import Path

import jinja2

from core.platform import i18n
from core.platform.i18n import N_

from . import sms_encoding

MAX_SMS_SEGMENTS = 2  # a GSM-7 invite or reminder at most; one at realistic lengths
FIRM_NAME_LIMIT = 40
NAME_LIMITS = {"firm": FIRM_NAME_LIMIT, "first": 20}  # characters of a name in a text
CODE_MINUTES = 10  # how long a sign-in code works (core.invitations.sign_in)


@dataclass(frozen=True)
class Rendered:
    body: str
    subject: str | None = None
    html: str | None = None
    segments: int = 1
    encoding: str = "GSM-7"


@dataclass(frozen=True)
class InviteText:
    firm: str
    first_name: str
    link: str
    expires_at: datetime
    tz: tzinfo
    purpose: str = "connect"  # connect|reconnect
    support_email: str = "support@ledgersync.com"
    name: str = ""  # the client's whole name (the email greets a company by it)
    language: str = i18n.DEFAULT  # the client's (core.platform.i18n.of_client)

    def _(self, text: str, **fields) -> str:
        return i18n.translate(self.language, text, **fields)

    def expiry(self, now: datetime | None = None) -> str:
        """'Sat 28 Nov 3:15 PM' in the client's zone and language: the day and the time."""
        return i18n.date_time(self.expires_at, self.tz, self.language)

    @property
    def task(self) -> str:
        if self.purpose == "reconnect":
            return self._("reconnect your bank accounts")
        return self._("connect your bank accounts")


def _fit_sms(variants: list[str], names: dict[str, str], fields: dict[str, str] | None = None
             ) -> Rendered:
    """The wording that takes the fewest segments, the fullest of those: the
    variants go from the fullest to the shortest, with `%(firm)s`-style fields for
    `names` (shortened to NAME_LIMITS) and `fields` (a link, a time: as given). A
    variant is GSM-7 (names transliterated, our own accents too) unless a name in it
    would be lost so (`smstext.needs_ucs2`), then UCS-2 with every name as written
    and its segments counted at 70 (67 per part)."""
    best: Rendered | None = None
    for variant in variants:
        used = i18n.fields_of(variant) & names.keys()
        as_ucs2 = any(sms_encoding.needs_ucs2(names[field]) for field in used)
        values = {field: _short(sms_encoding.for_sms(value, as_ucs2), NAME_LIMITS.get(field, 10**6))
                  for field, value in names.items()}
        text = sms_encoding.for_sms(variant % {**values, **(fields or {})}, as_ucs2)
        measured = sms_encoding.measure(text)
        if best is None or measured.count < best.segments:
            best = Rendered(body=text, segments=measured.count, encoding=measured.encoding)
    assert best is not None
    return best


def _short(name: str, limit: int) -> str:
    name = " ".join(name.split())
    return name if len(name) <= limit else name[: limit - 1].rstrip() + "."


# Each wording whole, so that a translation can put the words in its own order; the
# fullest first. `%(expiry)s` is the day and time the link stops working.
INVITE_SMS = {
    "connect": [
        N_("Hi %(first)s, %(firm)s invites you to connect your bank with LedgerSync: "
           "%(link)s until %(expiry)s. Reply STOP to opt out."),
        N_("Hi %(first)s, %(firm)s invites you to connect your bank: %(link)s until "
           "%(expiry)s. Reply STOP to opt out."),
        N_("%(firm)s invites you to connect your bank: %(link)s until %(expiry)s. "
           "Reply STOP to opt out."),
        N_("%(firm)s: connect your bank at %(link)s until %(expiry)s. Reply STOP to opt out."),
        N_("%(firm)s: connect your bank %(link)s until %(expiry)s. Reply STOP to opt out."),
    ],
    "reconnect": [
        N_("Hi %(first)s, %(firm)s asks you to reconnect your bank with LedgerSync: "
           "%(link)s until %(expiry)s. Reply STOP to opt out."),
        N_("Hi %(first)s, %(firm)s asks you to reconnect your bank: %(link)s until "
           "%(expiry)s. Reply STOP to opt out."),
        N_("%(firm)s asks you to reconnect your bank: %(link)s until %(expiry)s. "
           "Reply STOP to opt out."),
        N_("%(firm)s: reconnect your bank at %(link)s until %(expiry)s. "
           "Reply STOP to opt out."),
        N_("%(firm)s: reconnect your bank %(link)s until %(expiry)s. Reply STOP to opt out."),
    ],
}
REMINDER_SMS = {
    "connect": [
        N_("Hi %(first)s, a reminder from %(firm)s: your link to connect your bank works "
           "until %(expiry)s: %(link)s Reply STOP to opt out."),
        N_("Hi %(first)s, a reminder from %(firm)s: your link to connect your bank works "
           "until %(expiry)s: %(link)s"),
        N_("Reminder from %(firm)s: your link to connect your bank works until %(expiry)s: "
           "%(link)s"),
        N_("Reminder from %(firm)s: your link works until %(expiry)s: %(link)s"),
    ],
    "reconnect": [
        N_("Hi %(first)s, a reminder from %(firm)s: your link to reconnect your bank works "
           "until %(expiry)s: %(link)s Reply STOP to opt out."),
        N_("Hi %(first)s, a reminder from %(firm)s: your link to reconnect your bank works "
           "until %(expiry)s: %(link)s"),
        N_("Reminder from %(firm)s: your link to reconnect your bank works until "
           "%(expiry)s: %(link)s"),
        N_("Reminder from %(firm)s: your link works until %(expiry)s: %(link)s"),
    ],
}


def _link_sms(table: dict[str, list[str]], t: InviteText) -> Rendered:
    variants = table.get(t.purpose, table["connect"])
    return _fit_sms([t._(v) for v in variants], {"firm": t.firm, "first": t.first_name},
                    {"link": t.link, "expiry": t.expiry()})


def invite_sms(t: InviteText) -> Rendered:
    return _link_sms(INVITE_SMS, t)


def reminder_sms(t: InviteText) -> Rendered:
    return _link_sms(REMINDER_SMS, t)


_EMAILS = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "email_templates"),
    autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
)

# A client name with one of these words (or more than three words) is a company's:
# greeted by the whole name ("Hello Acme Co,"), never by a made-up first name.
COMPANY_WORDS = frozenset({
    "&", "co", "company", "inc", "incorporated", "llc", "llp", "lp", "ltd", "limited",
    "corp", "corporation", "group", "plc", "gmbh", "ag", "sa", "sarl", "bv", "pty", "pllc",
    "partners", "associates", "holdings", "trust", "foundation", "enterprises", "services",
    "sl", "srl", "sas", "cia",
})


def is_company(name: str) -> bool:
    words = [w.strip(".,()").lower() for w in name.split()]
    return len(words) > 3 or any(w in COMPANY_WORDS or "&" in w for w in words)


def greeting(t: InviteText) -> str:
    """'Hi Maria,' for a person; 'Hello Acme Co,' for a company (see COMPANY_WORDS)."""
    name = " ".join((t.name or t.first_name).split())
    if t.name and is_company(name):
        return t._("Hello %(name)s,", name=name)
    return t._("Hi %(name)s,", name=t.first_name or name)


@dataclass(frozen=True)
class Email:
    """What an email says, before it is laid out as text and HTML."""

    subject: str
    paragraphs: list[str]
    footer: str
    language: str
    link: str | None = None
    button: str | None = None


def _email(email: Email) -> Rendered:
    """Plain text and HTML (from `email_templates/message.html`, autoescaped)."""
    parts = [*email.paragraphs, *([email.link] if email.link else []), email.footer]
    page = _EMAILS.get_template("message.html").render(
        subject=email.subject, paragraphs=email.paragraphs, link=email.link,
        button=email.button, footer=email.footer, lang=email.language,
        copy_words=i18n.translate(email.language, "Or copy this link into your browser:"),
    )
    return Rendered(body="\n\n".join(parts), subject=email.subject, html=page)


def _link_email(t: InviteText, subject: str, paragraphs: list[str]) -> Rendered:
    footer = t._("This link is for you alone and expires %(expiry)s. Questions? Reply to "
                 "this email to reach %(firm)s, or write to LedgerSync support at "
                 "%(support)s.", expiry=t.expiry(), firm=t.firm, support=t.support_email)
    return _email(Email(subject, [greeting(t), *paragraphs], footer, t.language, t.link,
                        t.task[0].upper() + t.task[1:]))


def invite_email(t: InviteText) -> Rendered:
    return _link_email(
        t, t._("%(firm)s invites you to %(task)s", firm=t.firm, task=t.task),
        [t._("%(firm)s uses LedgerSync to keep your books up to date and asks you to "
             "%(task)s. It takes a couple of minutes: open the link, accept, and pick your "
             "bank. Your account can only add and restore bank connections.",
             firm=t.firm, task=t.task)])


def reminder_email(t: InviteText) -> Rendered:
    return _link_email(
        t, t._("Reminder: %(firm)s is waiting for you to %(task)s", firm=t.firm, task=t.task),
        [t._("A reminder from %(firm)s: your LedgerSync link expires %(expiry)s. Open it "
             "to %(task)s.", firm=t.firm, expiry=t.expiry(), task=t.task)])


def render(kind: str, channel: str, text: InviteText) -> Rendered:
    """The message of `kind` (invite | reminder) for `channel` (sms | email)."""
    table = {
        ("invite", "sms"): invite_sms,
        ("reminder", "sms"): reminder_sms,
        ("invite", "email"): invite_email,
        ("reminder", "email"): reminder_email,
    }
    return table[(kind, channel)](text)


# --- a sign-in code (core.invitations.sign_in) ------------------------------------------


def signin_code_sms(code: str, host: str, lang: str) -> Rendered:
    """The code first (a phone shows it in the notification), and on the last line the
    site it is for, as browsers read it to fill the code in by themselves (WebOTP:
    `@host #code`)."""
    said = i18n.translate(lang, "%(code)s is your LedgerSync sign-in code. It works for "
                              "%(minutes)s minutes, once. Don't share it.",
                        code=code, minutes=CODE_MINUTES)
    return _fit_sms([f"{said}\n\n@{host} #{code}"], {})


def signin_code_email(code: str, lang: str, support_email: str) -> Rendered:
    _ = partial(i18n.translate, lang)
    return _email(Email(
        _("Your LedgerSync sign-in code"),
        [_("Your sign-in code is %(code)s.", code=code),
         _("Enter it on the page where you asked for it. It works for %(minutes)s minutes, "
           "once.", minutes=CODE_MINUTES)],
        _("If you didn't ask for a code, ignore this email: nobody can sign in without it. "
          "Questions? Write to LedgerSync support at %(support)s.", support=support_email),
        lang))


# --- answers to clients' texts (TwiML replies) and staff replies -------------------------


def _reply(lang: str, text: str, **names: str) -> Rendered:
    """An answer of one wording in `lang`; `%(firm)s` in it is the firm's name, as
    `_fit_sms`; `sign_in`, a link, is kept as it is."""
    fields = {"sign_in": names.pop("sign_in")} if "sign_in" in names else {}
    return _fit_sms([i18n.translate(lang, text)], names, fields)


def help_sms(firm: str | None, support_email: str, lang: str = i18n.DEFAULT,
             sign_in: str | None = None) -> Rendered:
    if firm is None:
        return _reply(lang, N_("LedgerSync sends messages for accounting firms. If a firm "
                               "invited you, reply to its text. Help: %(support)s. Reply STOP "
                               "to opt out."), support=support_email)
    if sign_in is None:
        return _reply(lang, N_("%(firm)s uses LedgerSync to ask you to connect your bank "
                               "accounts for your books. Reply NEW for a new link, STOP to opt "
                               "out. Help: %(support)s"), firm=firm, support=support_email)
    return _reply(lang, N_("%(firm)s uses LedgerSync to ask you to connect your bank accounts "
                           "for your books. Sign in: %(sign_in)s Reply NEW for a new link, STOP "
                           "to opt out. Help: %(support)s"),
                  firm=firm, support=support_email, sign_in=sign_in)


def stopped_sms(firm: str | None, lang: str = i18n.DEFAULT) -> Rendered:
    return _reply(lang, N_("You won't get more texts from %(firm)s via LedgerSync. Reply "
                           "START to get them again."), firm=firm or "LedgerSync")


def resumed_sms(firm: str | None, lang: str = i18n.DEFAULT) -> Rendered:
    return _reply(lang, N_("You'll get texts from %(firm)s via LedgerSync again. Reply STOP "
                           "to opt out, HELP for help."), firm=firm or "LedgerSync")


def new_link_sms(firm: str, sent: bool, lang: str = i18n.DEFAULT) -> Rendered:
    if sent:
        return _reply(lang, N_("A new link from %(firm)s is on its way in the next text."),
                      firm=firm)
    return _reply(lang, N_("Thanks, we've asked %(firm)s to send you a new link."), firm=firm)


def question_ack_sms(firm: str, lang: str = i18n.DEFAULT) -> Rendered:
    return _reply(lang, N_("Thanks, %(firm)s got your message and will reply here. Reply "
                           "STOP to opt out."), firm=firm)


def staff_reply_sms(firm: str, text: str, first: bool, lang: str = i18n.DEFAULT) -> Rendered:
    """What a staff member wrote, prefixed with the firm; their typography made
    plain, their emoji kept (which makes the text UCS-2)."""
    body = f"{_short(firm, FIRM_NAME_LIMIT)}: {sms_encoding.plain(text.strip())}"
    if first:
        body += " " + sms_encoding.to_gsm7(i18n.translate(lang, "Reply STOP to opt out."))
    measured = sms_encoding.measure(body)
    return Rendered(body=body, segments=measured.count, encoding=measured.encoding)
