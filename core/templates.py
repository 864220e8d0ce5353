"""Every word we send to a client, in one place.

SMS texts are kept GSM-7 (names transliterated) and within two segments; the
shorter wording is used when a long firm or client name would push past that.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from . import clock, smstext

MAX_SMS_SEGMENTS = 2
FIRM_NAME_LIMIT = 40


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

    def expiry(self, now: datetime | None = None) -> str:
        """'Fri 27 Nov', or a time of day when the link lives less than a day."""
        now = now or clock.now()
        if self.expires_at - now < timedelta(days=1):
            local = self.expires_at.astimezone(self.tz)
            day = clock.short_date(local, self.tz)
            return f"{local.hour % 12 or 12}:{local:%M} {local:%p} {day}"
        return clock.short_date(self.expires_at, self.tz)

    @property
    def task(self) -> str:
        if self.purpose == "reconnect":
            return "reconnect your bank accounts"
        return "connect your bank accounts"


def _fit_sms(variants: list[str]) -> Rendered:
    for text in variants:
        text = smstext.to_gsm7(text)
        measured = smstext.measure(text)
        if measured.count <= MAX_SMS_SEGMENTS:
            break
    return Rendered(body=text, segments=measured.count, encoding=measured.encoding)


def _short(name: str, limit: int) -> str:
    name = " ".join(name.split())
    return name if len(name) <= limit else name[: limit - 1].rstrip() + "."


def invite_sms(t: InviteText) -> Rendered:
    firm, first = _short(t.firm, FIRM_NAME_LIMIT), _short(t.first_name, 20)
    verb = "asks you to" if t.purpose == "reconnect" else "invites you to"
    return _fit_sms([
        f"Hi {first}, {firm} {verb} {t.task} securely with LedgerSync. "
        f"Tap to start: {t.link} (link expires {t.expiry()}). Reply STOP to opt out.",
        f"{firm}: {t.task} with LedgerSync: {t.link} "
        f"(expires {t.expiry()}). Reply STOP to opt out.",
    ])


def reminder_sms(t: InviteText) -> Rendered:
    firm = _short(t.firm, FIRM_NAME_LIMIT)
    return _fit_sms([
        f"Reminder from {firm}: your LedgerSync link expires {t.expiry()}. "
        f"Tap to {t.task}: {t.link} Reply STOP to opt out.",
        f"{firm}: your link expires {t.expiry()}: {t.link}",
    ])


def _email(subject: str, paragraphs: list[str], t: InviteText) -> Rendered:
    text = "\n\n".join([*paragraphs, t.link, _email_footer(t)])
    button = (
        f'<p><a href="{html.escape(t.link)}" style="display:inline-block;padding:12px 20px;'
        'background:#1d4ed8;color:#ffffff;border-radius:6px;text-decoration:none">'
        f"{html.escape(t.task[0].upper() + t.task[1:])}</a></p>"
    )
    body_html = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    footer = f'<p style="color:#555;font-size:13px">{html.escape(_email_footer(t))}</p>'
    return Rendered(body=text, subject=subject, html=f"{body_html}{button}{footer}")


def _email_footer(t: InviteText) -> str:
    return (
        f"This link is for you alone and expires {t.expiry()}. Questions? Reply to "
        f"{t.firm}, or write to LedgerSync support at {t.support_email}."
    )


def invite_email(t: InviteText) -> Rendered:
    return _email(
        f"{t.firm} invites you to {t.task}",
        [
            f"Hi {t.first_name},",
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
            f"Hi {t.first_name},",
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


def _reply(text: str) -> Rendered:
    return _fit_sms([text])


def help_sms(firm: str | None, support_email: str) -> Rendered:
    if firm is None:
        return _reply("LedgerSync sends messages for accounting firms. If a firm invited you, "
                      f"reply to its text. Help: {support_email}. Reply STOP to opt out.")
    firm = _short(firm, FIRM_NAME_LIMIT)
    return _reply(f"{firm} uses LedgerSync to ask you to connect your bank accounts for your "
                  f"books. Reply NEW for a new link, STOP to opt out. Help: {support_email}")


def stopped_sms(firm: str | None) -> Rendered:
    who = _short(firm, FIRM_NAME_LIMIT) if firm else "LedgerSync"
    return _reply(f"You won't get more texts from {who} via LedgerSync. Reply START to "
                  "get them again.")


def resumed_sms(firm: str | None) -> Rendered:
    who = _short(firm, FIRM_NAME_LIMIT) if firm else "LedgerSync"
    return _reply(f"You'll get texts from {who} via LedgerSync again. Reply STOP to opt out, "
                  "HELP for help.")


def new_link_sms(firm: str, sent: bool) -> Rendered:
    firm = _short(firm, FIRM_NAME_LIMIT)
    if sent:
        return _reply(f"A new link from {firm} is on its way in the next text.")
    return _reply(f"Thanks, we've asked {firm} to send you a new link.")


def question_ack_sms(firm: str) -> Rendered:
    return _reply(f"Thanks, {_short(firm, FIRM_NAME_LIMIT)} got your message and will "
                  "reply here. Reply STOP to opt out.")


def staff_reply_sms(firm: str, text: str, first: bool) -> Rendered:
    """What a staff member wrote, prefixed with the firm; their typography made
    plain, their emoji kept (which makes the text UCS-2)."""
    body = f"{_short(firm, FIRM_NAME_LIMIT)}: {smstext.plain(text.strip())}"
    if first:
        body += " Reply STOP to opt out."
    measured = smstext.measure(body)
    return Rendered(body=body, segments=measured.count, encoding=measured.encoding)
