"""Every word we send to a client, in one place.

SMS texts are kept GSM-7 (names transliterated, or UCS-2 when a name isn't in a
Latin, Greek or Cyrillic alphabet) and in as few segments as the wording allows:
the invite and the reminder fall back to shorter wording when long names or a
long link would need a second segment.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

import jinja2

from . import clock, smstext

MAX_SMS_SEGMENTS = 2  # a GSM-7 invite or reminder at most; one at realistic lengths
FIRM_NAME_LIMIT = 40
NAME_LIMITS = {"firm": FIRM_NAME_LIMIT, "first": 20}  # characters of a name in a text


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

    def expiry(self, now: datetime | None = None) -> str:
        """'Sat 28 Nov 3:15 PM' in the client's zone: the day and the time of day."""
        local = self.expires_at.astimezone(self.tz)
        return f"{clock.short_date(local, self.tz)} {local.hour % 12 or 12}:{local:%M} {local:%p}"

    @property
    def task(self) -> str:
        if self.purpose == "reconnect":
            return "reconnect your bank accounts"
        return "connect your bank accounts"


def _fit_sms(variants: list[str], **names: str) -> Rendered:
    """The wording that takes the fewest segments, the fullest of those: the
    variants go from the fullest to the shortest, with `{firm}`-style fields for
    `names`. A variant is GSM-7 (names transliterated) unless a name in it would be
    lost so (`smstext.needs_ucs2`), then UCS-2 with every name as written and its
    segments counted at 70 (67 per part)."""
    best: Rendered | None = None
    for variant in variants:
        used = {field for _, field, _, _ in string.Formatter().parse(variant) if field}
        as_ucs2 = any(smstext.needs_ucs2(names[field]) for field in used)
        text = smstext.for_sms(variant.format_map(
            {field: _short(smstext.for_sms(value, as_ucs2), NAME_LIMITS.get(field, 10**6))
             for field, value in names.items()}), as_ucs2)
        measured = smstext.measure(text)
        if best is None or measured.count < best.segments:
            best = Rendered(body=text, segments=measured.count, encoding=measured.encoding)
    assert best is not None
    return best


def _short(name: str, limit: int) -> str:
    name = " ".join(name.split())
    return name if len(name) <= limit else name[: limit - 1].rstrip() + "."


def invite_sms(t: InviteText) -> Rendered:
    verb = "asks you to" if t.purpose == "reconnect" else "invites you to"
    task = f"{t.purpose} your bank"
    until = f"until {t.expiry()}. Reply STOP to opt out."
    link = t.link.replace("{", "%7B").replace("}", "%7D")
    return _fit_sms([
        f"Hi {{first}}, {{firm}} {verb} {task} with LedgerSync: {link} {until}",
        f"Hi {{first}}, {{firm}} {verb} {task}: {link} {until}",
        f"{{firm}} {verb} {task}: {link} {until}",
        f"{{firm}}: {task} at {link} {until}",
        f"{{firm}}: {task} {link} {until}",
    ], firm=t.firm, first=t.first_name)


def reminder_sms(t: InviteText) -> Rendered:
    task = f"{t.purpose} your bank"
    until = f"works until {t.expiry()}:"
    link = t.link.replace("{", "%7B").replace("}", "%7D")
    return _fit_sms([
        f"Hi {{first}}, a reminder from {{firm}}: your link to {task} {until} {link} "
        "Reply STOP to opt out.",
        f"Hi {{first}}, a reminder from {{firm}}: your link to {task} {until} {link}",
        f"Reminder from {{firm}}: your link to {task} {until} {link}",
        f"Reminder from {{firm}}: your link {until} {link}",
    ], firm=t.firm, first=t.first_name)


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
})


def is_company(name: str) -> bool:
    words = [w.strip(".,()").lower() for w in name.split()]
    return len(words) > 3 or any(w in COMPANY_WORDS or "&" in w for w in words)


def greeting(t: InviteText) -> str:
    """'Hi Maria,' for a person; 'Hello Acme Co,' for a company (see COMPANY_WORDS)."""
    name = " ".join((t.name or t.first_name).split())
    if t.name and is_company(name):
        return f"Hello {name},"
    return f"Hi {t.first_name or name},"


def _email(subject: str, paragraphs: list[str], t: InviteText) -> Rendered:
    """Plain text and HTML (from `email_templates/message.html`, autoescaped)."""
    footer = _email_footer(t)
    text = "\n\n".join([*paragraphs, t.link, footer])
    page = _EMAILS.get_template("message.html").render(
        subject=subject, paragraphs=paragraphs, link=t.link,
        button=t.task[0].upper() + t.task[1:], footer=footer,
    )
    return Rendered(body=text, subject=subject, html=page)


def _email_footer(t: InviteText) -> str:
    return (
        f"This link is for you alone and expires {t.expiry()}. Questions? Reply to this "
        f"email to reach {t.firm}, or write to LedgerSync support at {t.support_email}."
    )


def invite_email(t: InviteText) -> Rendered:
    return _email(
        f"{t.firm} invites you to {t.task}",
        [
            greeting(t),
            f"{t.firm} uses LedgerSync to keep your books up to date and asks you to "
            f"{t.task}. It takes a couple of minutes: open the link, accept, and pick "
            "your bank. Your account can only add and restore bank connections.",
        ],
        t,
    )


def reminder_email(t: InviteText) -> Rendered:
    return _email(
        f"Reminder: {t.firm} is waiting for you to {t.task}",
        [
            greeting(t),
            f"A reminder from {t.firm}: your LedgerSync link expires {t.expiry()}. "
            f"Open it to {t.task}.",
        ],
        t,
    )


def render(kind: str, channel: str, text: InviteText) -> Rendered:
    """The message of `kind` (invite | reminder) for `channel` (sms | email)."""
    table = {
        ("invite", "sms"): invite_sms,
        ("reminder", "sms"): reminder_sms,
        ("invite", "email"): invite_email,
        ("reminder", "email"): reminder_email,
    }
    return table[(kind, channel)](text)


# --- answers to clients' texts (TwiML replies) and staff replies -------------------------


def _reply(text: str, **names: str) -> Rendered:
    """An answer of one wording; `{firm}` in it is the firm's name, as `_fit_sms`."""
    return _fit_sms([text], **names)


def help_sms(firm: str | None, support_email: str) -> Rendered:
    if firm is None:
        return _reply("LedgerSync sends messages for accounting firms. If a firm invited you, "
                      "reply to its text. Help: {support}. Reply STOP to opt out.",
                      support=support_email)
    return _reply("{firm} uses LedgerSync to ask you to connect your bank accounts for your "
                  "books. Reply NEW for a new link, STOP to opt out. Help: {support}",
                  firm=firm, support=support_email)


def stopped_sms(firm: str | None) -> Rendered:
    return _reply("You won't get more texts from {firm} via LedgerSync. Reply START to "
                  "get them again.", firm=firm or "LedgerSync")


def resumed_sms(firm: str | None) -> Rendered:
    return _reply("You'll get texts from {firm} via LedgerSync again. Reply STOP to opt out, "
                  "HELP for help.", firm=firm or "LedgerSync")


def new_link_sms(firm: str, sent: bool) -> Rendered:
    if sent:
        return _reply("A new link from {firm} is on its way in the next text.", firm=firm)
    return _reply("Thanks, we've asked {firm} to send you a new link.", firm=firm)


def question_ack_sms(firm: str) -> Rendered:
    return _reply("Thanks, {firm} got your message and will reply here. Reply STOP to opt out.",
                  firm=firm)


def staff_reply_sms(firm: str, text: str, first: bool) -> Rendered:
    """What a staff member wrote, prefixed with the firm; their typography made
    plain, their emoji kept (which makes the text UCS-2)."""
    body = f"{_short(firm, FIRM_NAME_LIMIT)}: {smstext.plain(text.strip())}"
    if first:
        body += " Reply STOP to opt out."
    measured = smstext.measure(body)
    return Rendered(body=body, segments=measured.count, encoding=measured.encoding)
