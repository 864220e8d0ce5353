"""Email over SMTP (`SMTP_URL`, `MAIL_FROM`): multipart text and HTML.

`smtp://user:pass@host:587` (STARTTLS when offered), `smtps://…:465` (TLS).
"""

from __future__ import annotations

import functools
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

from . import outbound
from .config import settings
from .models import Message, Status
from .outbound import SendResult

TIMEOUT = 20


class SmtpSender:
    def send(self, message: Message) -> SendResult:
        config = settings()
        email = EmailMessage()
        email["From"] = config.mail_from
        email["To"] = message.to_addr
        email["Subject"] = message.subject or "LedgerSync"
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
