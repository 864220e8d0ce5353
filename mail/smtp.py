"""Email over SMTP (`SMTP_URL`, `MAIL_FROM`): multipart text and HTML.

`smtp://user:pass@host:587` (STARTTLS when offered), `smtps://…:465` (TLS).

A client's email comes from "Smith & Co via LedgerSync" at MAIL_FROM's address,
answers go to the firm (`Reply-To`: its first admin's address), and it carries
`List-Unsubscribe` (a mailto to LedgerSync support and a signed one-click https
link, RFC 8058) with `List-Unsubscribe-Post`.
"""

from __future__ import annotations

import functools
import smtplib
import ssl
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import quote, unquote, urlparse

from core.messaging import optouts, outbound
from core.messaging.outbound import SendResult
from core.platform import clock
from core.platform.config import Settings, settings
from core.records import Firm, Message, Staff, Status

TIMEOUT = 20
# Headers are not folded below RFC 5322's 998 characters: a long one-click URL in
# List-Unsubscribe must stay one plain word (78 would have it RFC 2047-encoded).
POLICY = policy.default.clone(max_line_length=998)


class SmtpSender:
    def send(self, message: Message) -> SendResult:
        config = settings()
        email = EmailMessage(policy=POLICY)
        firm = Firm.get_or_none(Firm.id == message.firm_id) if message.firm_id else None
        email["From"] = _sender(config, firm)
        email["To"] = message.to_addr
        email["Subject"] = message.subject or "LedgerSync"
        email["Date"] = format_datetime(clock.now())
        contact = _contact(firm)
        if contact:
            email["Reply-To"] = contact
        if message.kind in outbound.CLIENT_KINDS:
            _unsubscribe(email, message.to_addr, config)
        # The same message always carries the same Message-ID, so a copy re-sent
        # after a crash mid-send is recognised (and dropped) by the receiving server.
        stamp = f"{message.created_at:%Y%m%d%H%M%S}"
        email["Message-ID"] = f"<ledgersync-{message.id}-{stamp}@{_domain()}>"
        body, html = outbound.text_of(message)
        email.set_content(body)
        if html:
            email.add_alternative(html, subtype="html")
        try:
            with _connect(config.smtp_url) as smtp:
                smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as refused:
            code, text = next(iter(refused.recipients.values()))
            return _busy(code) if 400 <= code < 500 else _failed(code, text)
        except smtplib.SMTPAuthenticationError as problem:
            # Our SMTP_URL credentials, not the client's address: keep it and retry.
            return SendResult(Status.PENDING, "smtp", retry=True, error_code=str(problem.smtp_code),
                              error_message="the mail server refused our login (check SMTP_URL)")
        except smtplib.SMTPResponseException as problem:
            if 400 <= problem.smtp_code < 500:
                return _busy(problem.smtp_code)
            return _failed(problem.smtp_code, problem.smtp_error)
        except (OSError, smtplib.SMTPException) as problem:
            return SendResult(Status.PENDING, "smtp", retry=True,
                              error_message=f"mail server unreachable ({type(problem).__name__})")
        return SendResult("sent", "smtp", provider_id=email["Message-ID"].strip("<>")[:64])


def _sender(config: Settings, firm: Firm | None) -> Address | str:
    """"Smith & Co via LedgerSync" <MAIL_FROM's address>; MAIL_FROM as it is without
    a firm."""
    address = parseaddr(config.mail_from)[1]
    if firm is None or "@" not in address:
        return config.mail_from
    name = " ".join(firm.name.split())  # no line breaks into a header
    return Address(display_name=f"{name} via LedgerSync", addr_spec=address)


def _contact(firm: Firm | None) -> str | None:
    """The firm's contact address: its first admin's (the one who created the
    firm, unless removed: then the oldest admin left)."""
    if firm is None:
        return None
    admin = (Staff.select(Staff.email).where(Staff.firm == firm.id, Staff.role == "admin")
             .order_by(Staff.created_at, Staff.id).first())
    return admin.email if admin else None


def _unsubscribe(email: EmailMessage, address: str, config: Settings) -> None:
    token = optouts.unsubscribe_token(address, config)
    mailto = f"mailto:{config.support_email}?subject={quote(f'unsubscribe {token}')}"
    email["List-Unsubscribe"] = f"<{mailto}>, <{optouts.unsubscribe_url(address, config)}>"
    email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"


def _domain() -> str:
    address = settings().mail_from.rsplit("@", 1)
    return address[1].strip(" >") if len(address) == 2 else "ledgersync.connect"


def _busy(code: int) -> SendResult:
    """A 4xx answer (greylisting, a full queue…): try again later."""
    return SendResult(Status.PENDING, "smtp", retry=True, error_code=str(code),
                      error_message=f"mail server busy ({code})")


def _failed(code, text) -> SendResult:
    detail = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return SendResult("failed", "smtp", error_code=str(code),
                      error_message=f"the address was refused ({detail[:120]})")


@functools.cache
def _tls() -> ssl.SSLContext:
    """smtplib's default TLS context checks no certificate: verify the server's.
    (Built once, and only when TLS is used: loading the CA store takes ~60 ms.)"""
    return ssl.create_default_context()


def _connect(url: str) -> smtplib.SMTP:
    parts = urlparse(url)
    secure = parts.scheme == "smtps"
    port = parts.port or (465 if secure else 25)
    host = parts.hostname or "localhost"
    if secure:
        smtp = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=_tls())
    else:
        smtp = smtplib.SMTP(host, port, timeout=TIMEOUT)
    try:
        if not secure:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=_tls())
                smtp.ehlo()
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
    except BaseException:
        smtp.close()  # not yet inside the caller's `with`
        raise
    return smtp
