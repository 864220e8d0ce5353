"""Email through a real SMTP server on loopback (aiosmtpd), on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from core import config, deliveries, invites, outbound, tokens
from core.mailer import SmtpSender
from core.models import Message

MAIL_FROM = "Smith & Co via LedgerSync <no-reply@connect.example.com>"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Mailbox:
    """An aiosmtpd handler that keeps what it accepts; `rcpt_reply` / `data_reply`
    make it refuse instead (e.g. "550 5.1.1 no such user")."""

    def __init__(self):
        self.envelopes = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def emails(self):
        return [message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]


@pytest.fixture
def mailbox():
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture
def smtp_url(database, mailbox):
    def use(url: str) -> None:
        config.use(config.settings().with_(smtp_url=url, mail_from=MAIL_FROM))
        outbound.reset_senders()

    use(f"smtp://127.0.0.1:{mailbox.port}")
    return use


def notices() -> list[Message]:
    return list(Message.select().where(Message.kind == "notice_delivery_failed"))


def test_email_invite_arrives_with_text_and_html(clock, maria, mailbox, smtp_url):
    sent = invites.send(maria, "email")
    link = f"https://connect.example.com/i/{tokens.unseal(sent.invite.token_sealed)}"

    [envelope] = mailbox.envelopes
    assert envelope.rcpt_tos == ["maria@example.com"]
    assert envelope.mail_from == "no-reply@connect.example.com"
    [email] = mailbox.emails()
    assert email["From"] == MAIL_FROM and email["To"] == "maria@example.com"
    assert "Smith & Co" in email["Subject"]
    assert email.get_content_type() == "multipart/alternative"
    text, html = email.get_body(("plain",)), email.get_body(("html",))
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert link in text.get_content() and link in html.get_content()
    message = sent.message
    assert (message.status, message.provider) == ("sent", "smtp")
    assert email["Message-ID"].strip("<>") == message.provider_id


def test_a_copy_sent_again_keeps_its_message_id(maria, mailbox, smtp_url):
    message = invites.send(maria, "email").message
    SmtpSender().send(message)  # as after a crash between sending and recording it
    first, second = mailbox.emails()
    assert first["Message-ID"] == second["Message-ID"]


def test_refused_address_fails_with_the_reason(maria, mailbox, smtp_url):
    mailbox.rcpt_reply = "550 5.1.1 no such user"
    message = invites.send(maria, "email").message

    assert (message.status, message.error_code) == ("failed", "550")
    assert "no such user" in message.error_message
    [notice] = notices()
    assert notice.channel == "slack" and "no such user" in notice.body
    assert mailbox.envelopes == []


@pytest.mark.parametrize("where", ["rcpt", "data"])
def test_busy_server_is_tried_again(firm, maria, mailbox, smtp_url, where):
    setattr(mailbox, f"{where}_reply", "451 4.7.1 try again later")
    message = invites.send(maria, "email").message

    assert (message.status, message.error_message) == ("pending", "mail server busy (451)")
    with pytest.raises(outbound.TransientFailure):
        deliveries.deliver(message.id)
    assert message.refreshed().status == "pending"
    setattr(mailbox, f"{where}_reply", None)
    assert deliveries.deliver(message.id).status == "sent"
    assert len(mailbox.envelopes) == 1 and notices() == []


def test_server_down_is_tried_again(maria, smtp_url):
    smtp_url(f"smtp://127.0.0.1:{free_port()}")
    message = invites.send(maria, "email").message
    assert message.status == "pending"
    with pytest.raises(outbound.TransientFailure, match="unreachable"):
        deliveries.deliver(message.id)
    assert message.refreshed().status == "pending"
