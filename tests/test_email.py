"""Email through a real SMTP server on loopback (aiosmtpd), on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit

import pytest
from aiosmtpd.controller import Controller

import wiring
from core.firms import firms
from core.invitations import clients, invites
from core.messaging import deliveries, optouts, outbound, templates
from core.platform import config, tokens
from core.platform.errors import Refused
from core.records import Message, OptOut
from mail.smtp import SmtpSender

MAIL_FROM = "LedgerSync <no-reply@connect.example.com>"
FROM_FIRM = "Smith & Co via LedgerSync <no-reply@connect.example.com>"


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
    assert email["From"] == FROM_FIRM and email["To"] == "maria@example.com"
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


# --- who it is from, who answers, and unsubscribing (RFC 8058) --------------------------


def one_click_url(email) -> str:
    [mailto, url] = [part.strip(" <>") for part in email["List-Unsubscribe"].split(",")]
    assert mailto.startswith("mailto:support@ledgersync.com?subject=unsubscribe%20")
    assert url.startswith("https://connect.example.com/unsubscribe/")
    return url


@pytest.fixture
def web(smtp_url):
    from web import create_app

    app = create_app(config.settings())
    wiring.inline()  # deliver at once, in this process
    return app.test_client()


def test_email_comes_from_the_firm_via_ledgersync_and_answers_go_to_the_firm(
        clock, firm, maria, mailbox, smtp_url):
    firms.add_staff(firm, "bob@smith.example", "x" * 12, role="admin")  # a later admin
    invites.send(maria, "email")

    [email] = mailbox.emails()
    assert email["From"] == FROM_FIRM
    assert email["From"].addresses[0].display_name == "Smith & Co via LedgerSync"
    assert mailbox.envelopes[0].mail_from == "no-reply@connect.example.com"
    assert email["Reply-To"] == "ann@smith.example"  # the firm's first admin
    assert abs(parsedate_to_datetime(email["Date"]) - datetime.now(UTC)) < timedelta(seconds=5)
    url = one_click_url(email)
    token = url.rsplit("/", 1)[1]
    assert "maria@example.com" not in url and optouts.address_of_unsubscribe(token) == (
        "maria@example.com")
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Reply to this email to reach Smith & Co" in email.get_body(("plain",)).get_content()


def test_one_click_unsubscribe_opts_the_address_out_of_email(clock, maria, mailbox, web):
    invites.send(maria, "email")
    path = urlsplit(one_click_url(mailbox.emails()[0])).path

    page = web.get(path)  # a link checker, or the person reading first
    assert page.status_code == 200 and '<form method="post">' in page.text
    assert not optouts.is_opted_out("maria@example.com")

    # What a mail client sends (RFC 8058): no CSRF token, no cookie, no Origin.
    done = web.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "unsubscribed" in done.text
    assert optouts.is_opted_out("maria@example.com")
    assert web.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # again

    with pytest.raises(Refused):
        invites.resend(maria, "email")
    clock.shift(timedelta(days=2))
    with pytest.raises(Refused):
        invites.remind(maria, force=True)
    assert len(mailbox.envelopes) == 1  # nothing more was emailed


@pytest.mark.parametrize("forge", ["mac", "address", "key", "garbage"])
def test_a_forged_unsubscribe_token_is_refused(maria, mailbox, web, forge):
    good = optouts.unsubscribe_token("maria@example.com")
    other = optouts.unsubscribe_token("maria@example.com",
                                      config.settings().with_(secret_key="another-key-" * 3))
    encoded, mac = good.split(".")
    forged = {
        "mac": f"{encoded}.{mac[:-2]}AA",
        "address": f"{optouts.unsubscribe_token('x@example.com').split('.')[0]}.{mac}",
        "key": other,
        "garbage": "not-a-token",
    }[forge]
    assert web.post(f"/unsubscribe/{forged}").status_code == 404
    assert web.get(f"/unsubscribe/{forged}").status_code == 404
    assert OptOut.select().count() == 0


def test_a_head_request_only_looks(maria, web):
    # Mail scanners and link checkers send HEAD; Flask answers it with the GET route.
    path = f"/unsubscribe/{optouts.unsubscribe_token('maria@example.com')}"
    assert web.head(path).status_code == 200
    assert not optouts.is_opted_out("maria@example.com") and OptOut.select().count() == 0
    assert web.post(path).status_code == 200  # the button: only a POST opts out
    assert optouts.is_opted_out("maria@example.com")


def test_the_unsubscribe_page_has_the_pages_strict_policy(maria, web):
    page = web.get(f"/unsubscribe/{optouts.unsubscribe_token('maria@example.com')}")
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy


@pytest.mark.parametrize("suffix", [".é", "é", "٣", "²", "\u0660\u0661"])
def test_an_unsubscribe_token_with_odd_characters_is_404(maria, web, suffix):
    path = f"/unsubscribe/{quote(optouts.unsubscribe_token('maria@example.com') + suffix)}"
    for method in ("GET", "HEAD", "POST"):
        assert web.open(path, method=method).status_code == 404, method
    assert OptOut.select().count() == 0


def test_a_token_made_before_a_key_rotation_still_works(maria, database):
    token = optouts.unsubscribe_token("maria@example.com")
    old = config.settings().secret_key
    rotated = config.settings().with_(secret_key="new-key-" * 4, secret_key_fallbacks=(old,))
    assert optouts.address_of_unsubscribe(token, rotated) == "maria@example.com"


@pytest.mark.parametrize(("name", "greeting"), [
    ("Maria Gonzalez", "Hi Maria,"),
    ("Acme Co", "Hello Acme Co,"),
    ("Acme, Inc.", "Hello Acme, Inc.,"),
    ("Smith & Jones", "Hello Smith & Jones,"),
    ("Nguyen Family Dental Practice", "Hello Nguyen Family Dental Practice,"),
    ("Blue Sky LLC", "Hello Blue Sky LLC,"),
    ("Ann-Marie O'Neil", "Hi Ann-Marie,"),
])
def test_a_company_is_greeted_by_its_whole_name(name, greeting):
    text = templates.InviteText(firm="Smith & Co", first_name=name.split()[0], name=name,
                                link="https://connect.example.com/i/x", tz=UTC,
                                expires_at=datetime(2026, 12, 1, tzinfo=UTC))
    for rendered in (templates.invite_email(text), templates.reminder_email(text)):
        assert rendered.body.startswith(greeting + "\n")


def test_a_company_client_is_greeted_as_a_company(firm, mailbox, smtp_url):
    acme = clients.add(firm, "Acme Co", email="books@acme.example")
    invites.send(acme, "email")
    [email] = mailbox.emails()
    assert email.get_body(("plain",)).get_content().startswith("Hello Acme Co,")
    assert "<p>Hello Acme Co,</p>" in email.get_body(("html",)).get_content()


def test_the_html_part_escapes_the_firm_name(database, mailbox, smtp_url):
    firm = firms.create("<b>&Co", admin_email="boss@co.example", admin_password="x" * 12)
    client = clients.add(firm, "Maria Gonzalez", email="maria@example.com")
    sent = invites.send(client, "email")

    [email] = mailbox.emails()
    html = email.get_body(("html",)).get_content()
    assert "<b>" not in html and "&lt;b&gt;&amp;Co uses LedgerSync" in html
    link = f"https://connect.example.com/i/{tokens.unseal(sent.invite.token_sealed)}"
    assert f'href="{link}"' in html  # unmasked at send time
    assert tokens.masked(tokens.unseal(sent.invite.token_sealed)) in sent.message.html
    assert email["From"].addresses[0].display_name == "<b>&Co via LedgerSync"
    assert email["Reply-To"] == "boss@co.example"


def test_a_spanish_speaking_client_gets_the_invite_and_a_sign_in_code_in_spanish(
        clock, maria, mailbox, smtp_url):
    from core.invitations import links, sign_in

    clients.update(maria, language="es")
    sent = invites.send(maria.refreshed(), "email")
    [invite] = mailbox.emails()
    assert invite["Subject"] == "Smith & Co le invita a conectar sus cuentas bancarias"
    html = invite.get_body(("html",)).get_content()
    assert '<html lang="es">' in html and "O copie este enlace en su navegador:" in html
    assert invite.get_body(("plain",)).get_content().startswith("Hola, Maria:")
    links.accept(tokens.unseal(sent.invite.token_sealed))
    sign_in.ask("maria@example.com")
    code = mailbox.emails()[-1]
    assert code["Subject"] == "Su código para entrar en LedgerSync"
    said = code.get_body(("plain",)).get_content()
    number = said.split("Su código para entrar es ")[1][:6]
    assert number.isdigit() and "List-Unsubscribe" not in code  # asked for, not a campaign
    stored = Message.get(Message.kind == "signin_code")
    assert number not in stored.body and number not in stored.html
