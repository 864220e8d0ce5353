"""The invite lifecycle in core, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from core.invitations import clients, invites, links, reminders
from core.messaging import optouts, outbox
from core.platform import config, tokens
from core.platform.errors import InvalidInput, Refused
from core.records import ClientAccount, Event, Invite, Message

TTL = timedelta(days=5)


def token_of(invite: Invite) -> str:
    return tokens.unseal(invite.token_sealed)


def test_whole_lifecycle(clock, maria):
    sent = invites.send(maria, "sms")
    first_token = token_of(sent.invite)
    assert sent.message.status == "delivered"  # the embedded outbox
    assert sent.message.to_addr == "+12125550134"
    text = outbox.text(sent.message)  # what Maria read
    assert "Hi Maria, Smith & Co invites you" in text
    assert f"https://connect.example.com/i/{first_token}" in text
    assert "until Sat 28 Nov" in text
    assert first_token not in sent.message.refreshed().body  # not at rest
    assert f"https://connect.example.com/i/{first_token[:4]}…" in sent.message.body

    clock.shift(timedelta(hours=2))
    again = invites.resend(maria)
    assert again.replaced.id == sent.invite.id
    assert links.check(first_token).state == "superseded"
    assert links.check(token_of(again.invite)).state == "pending"

    reminded = invites.remind(maria)
    assert reminded.message.kind == "reminder"
    assert token_of(again.invite) in outbox.text(reminded.message)  # the same, working link
    with pytest.raises(Refused, match="one reminder a day"):
        invites.remind(maria)
    clock.shift(timedelta(minutes=5))
    assert invites.remind(maria, force=True).message.kind == "reminder"

    with pytest.raises(Refused, match="already been used|replaced"):
        links.accept(first_token)
    accepted = links.accept(token_of(again.invite))
    assert accepted.new_account
    assert ClientAccount.get(ClientAccount.client == maria)
    assert links.check(token_of(again.invite)).state == "accepted"

    with pytest.raises(Refused, match="already accepted"):
        invites.remind(maria)
    with pytest.raises(Refused, match="already accepted; ask them to reconnect"):
        invites.send(maria, "sms")
    clock.shift(timedelta(days=3))
    assert list(reminders.due()) == []
    assert reminders.send_automatic(again.invite.id).result in {"skipped", "done"}
    assert Message.select().where(Message.kind == "auto_reminder").count() == 0


def test_expiry_exact_to_the_second(clock, maria):
    invite = invites.send(maria, "email").invite
    token = token_of(invite)
    clock.shift(TTL - timedelta(seconds=1))
    assert links.check(token).state == "pending"
    clock.shift(timedelta(seconds=1))
    assert links.check(token).state == "expired"
    with pytest.raises(Refused, match="expired"):
        links.accept(token)
    assert invites.expire(invite.id) is True
    assert invites.expire(invite.id) is False  # recorded once
    assert Event.select().where(Event.kind == "invite.expired").count() == 1


def test_ttl_comes_from_settings(clock, maria, settings):
    config.use(settings.with_(invite_ttl=timedelta(seconds=90),
                              reminder_after=timedelta(seconds=30)))
    invite = invites.send(maria, "sms").invite
    assert invite.expires_at - invite.sent_at == timedelta(seconds=90)
    assert invite.reminder_due_at - invite.sent_at == timedelta(seconds=30)


def test_a_copy_of_the_database_yields_no_working_link(clock, maria, database):
    invite = invites.send(maria, "sms").invite
    real = token_of(invite)
    cursor = database.execute_sql('SELECT * FROM "invite"')
    columns = [c[0] for c in cursor.description]
    values = [str(v) for row in cursor.fetchall() for v in row if v is not None]
    assert "token_digest" in columns and "token_sealed" in columns
    assert real not in values
    for value in values:
        for candidate in {value, value[:22], value[-22:]}:
            assert links.check(candidate).state == "unknown", candidate
    assert links.check(real).state == "pending"


def test_send_refusals(clock, firm):
    no_phone = clients.add(firm, "Email Only", email="e@example.com")
    with pytest.raises(Refused, match="no mobile number"):
        invites.send(no_phone, "sms")
    no_email = clients.add(firm, "Phone Only", phone="2125550135")
    with pytest.raises(Refused, match="no email address"):
        invites.send(no_email, "email")
    with pytest.raises(InvalidInput, match="sms or email"):
        invites.send(no_email, "pigeon")
    optouts.opt_out("+12125550135", "keyword")
    with pytest.raises(Refused, match="opted out"):
        invites.send(no_email, "sms")
    assert Message.select().count() == 0


def test_double_submitted_send_texts_once(clock, maria):
    invites.send(maria, "sms")
    with pytest.raises(Refused, match="already has a link"):
        invites.send(maria, "sms")
    with pytest.raises(Refused, match="give it a minute"):
        invites.resend(maria)
    assert Message.select().count() == 1


def test_one_open_invite_per_client_is_enforced_by_the_database(clock, maria, database):
    from peewee import IntegrityError

    invite = invites.send(maria, "sms").invite
    with pytest.raises(IntegrityError), database.atomic():
        Invite.create(firm=invite.firm_id, client=maria, channel="sms", token_digest="x",
                      token_sealed="y", sent_at=invite.sent_at, expires_at=invite.expires_at,
                      reminder_due_at=invite.reminder_due_at)


def test_remind_revoke_refusals(clock, maria):
    with pytest.raises(Refused, match="not been invited"):
        invites.remind(maria)
    invite = invites.send(maria, "sms").invite
    invites.revoke(maria)
    assert links.check(token_of(invite)).state == "revoked"
    with pytest.raises(Refused, match="revoked; use resend"):
        invites.remind(maria)
    clock.shift(timedelta(minutes=2))
    fresh = invites.resend(maria).invite
    clock.shift(TTL)
    with pytest.raises(Refused, match="expired .*; use resend"):
        invites.remind(maria)
    assert fresh.refreshed().expired_at is not None


def test_expired_client_can_be_invited_again(clock, maria):
    invites.send(maria, "sms")
    clock.shift(TTL + timedelta(hours=1))
    again = invites.send(maria, "email")
    assert again.invite.channel == "email"
    assert again.message.to_addr == "maria@example.com"


def test_reconnect_invite_for_an_accepted_client(clock, maria):
    links.accept(token_of(invites.send(maria, "sms").invite))
    clock.shift(timedelta(days=10))
    sent = invites.send(maria, "sms", purpose="reconnect", banks=["Chase"])
    assert "asks you to reconnect your bank" in sent.message.body
    assert sent.invite.banks == ["Chase"]
    result = links.accept(token_of(sent.invite))
    assert result.new_account is False


def test_opening_a_link_changes_nothing_but_the_first_opened_time(clock, maria):
    invite = invites.send(maria, "sms").invite
    token = token_of(invite)
    assert links.opened(token).usable
    first = invite.refreshed().first_clicked_at
    clock.shift(timedelta(hours=1))
    links.opened(token)
    after = invite.refreshed()
    assert after.first_clicked_at == first
    assert after.accepted_at is None and after.status(after.sent_at) == "pending"


def test_dead_and_unknown_links_say_which_and_nothing_more(clock, maria):
    assert links.check("A" * 22).state == "unknown"
    assert links.check("not-a-token").state == "unknown"
    assert links.check("").firm_name is None
    invite = invites.send(maria, "sms").invite
    state = links.check(token_of(invite))
    assert state.firm_name == "Smith & Co"


def test_resend_keeps_channel_purpose_and_banks(clock, maria):
    invites.send(maria, "email", purpose="connect", banks=["Chase", "Ally"])
    clock.shift(timedelta(minutes=3))
    again = invites.resend(maria)
    assert (again.invite.channel, again.invite.banks) == ("email", ["Chase", "Ally"])


def test_keys_rotate_without_breaking_links(clock, maria, settings):
    invite = invites.send(maria, "sms").invite
    token = token_of(invite)
    new_key = tokens.new_key()
    old_seal_key = tokens._derived_key(settings.secret_key).decode()
    config.use(settings.with_(secret_key="a-brand-new-secret-key-for-2027",
                              secret_key_fallbacks=(settings.secret_key,),
                              encryption_keys=(new_key, old_seal_key)))
    assert links.check(token).state == "pending"
    assert outbox.text(invites.remind(maria).message).count(token) == 1


# --- "This isn't me": the address is checked before anything more goes to it -------------


def disowned(client) -> Invite:
    invite = invites.send(client, "sms").invite
    assert links.disown(token_of(invite))
    return invite


def invites_to(address: str) -> int:
    return Message.select().where(Message.kind == "invite", Message.to_addr == address).count()


UNCHECKED = (r"Someone who opened the last link sent to \(212\) 555-0134 said it isn't Maria "
             r"Gonzalez\. Check Maria Gonzalez's number with them before sending anything: if "
             r"it's wrong, change it; if it's right, resend with force\.")


def test_after_this_isnt_me_a_link_to_the_same_number_warns_and_sends_nothing(clock, maria):
    disowned(maria)
    clock.shift(timedelta(minutes=5))
    for again in (lambda: invites.resend(maria), lambda: invites.send(maria, "sms"),
                  lambda: invites.resend(maria, "sms", purpose="reconnect")):
        with pytest.raises(invites.Unchecked, match=UNCHECKED):
            again()
    assert invites_to("+12125550134") == 1
    sent = invites.resend(maria, checked=True)  # checked with Maria: send anyway
    assert sent.to == "+12125550134" and invites_to("+12125550134") == 2
    clock.shift(timedelta(minutes=5))
    assert invites.resend(maria).to == "+12125550134"  # checked once is checked


def test_after_this_isnt_me_another_address_goes_at_once(clock, maria):
    disowned(maria)
    assert invites.resend(maria, "email").to == "maria@example.com"
    with pytest.raises(invites.Unchecked):
        invites.resend(maria, "sms")  # the number is still to check
    clients.update(maria, phone="(212) 555-0199")  # the firm corrected it
    assert invites.resend(maria, "sms").to == "+12125550199"
    assert invites_to("+12125550134") == 1


@pytest.mark.parametrize("self_serve", [False, True], ids=["firm_asked", "self_serve"])
def test_new_texted_from_the_number_to_check_sends_no_link_and_offers_no_resend(
        clock, maria, self_serve):
    from core.invitations import client_texts

    maria.firm.clients_may_request_links = self_serve
    maria.firm.save()
    disowned(maria)
    clock.shift(timedelta(minutes=5))
    answer = client_texts.received(
        client_texts.Inbound("SMnew1", "+12125550134", "+15005550006", "NEW"))
    assert answer.text == "Thanks, we've asked Smith & Co to send you a new link."
    assert invites_to("+12125550134") == 1  # no link went
    assert not Message.select().where(Message.kind == "notice_new_link_requested").exists()
    notice = Message.get(Message.kind == "notice_new_link_unchecked")  # no Resend on it
    assert notice.body == (
        "Maria Gonzalez's number, (212) 555-0134, texted NEW: they'd like a new link. Someone "
        "who opened the last link sent there said it isn't them, so none was sent. Check Maria "
        "Gonzalez's number before you send one: /ledgersync status Maria Gonzalez")


def test_resend_force_from_the_command_line(maria, settings):
    disowned(maria)
    env = {**os.environ, "DATABASE_URL": settings.database_url, "SECRET_KEY": settings.secret_key,
           "PUBLIC_BASE_URL": settings.public_base_url, "REDIS_URL": "redis://127.0.0.1:1/0",
           "LEDGERSYNC_FIRM": "Smith & Co"}

    def ledgersync(*args):
        return subprocess.run([sys.executable, "-m", "cli", *args], env=env, timeout=60,
                              capture_output=True, text=True, cwd=Path(__file__).parents[1])

    warned = ledgersync("resend", "maria")
    assert warned.returncode == 1 and "said it isn't Maria Gonzalez" in warned.stderr
    assert "resend with force" in warned.stderr and invites_to("+12125550134") == 1
    sent = ledgersync("resend", "maria", "--force")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("Sent a new link to Maria Gonzalez by SMS at (212) 555-0134")
    assert invites_to("+12125550134") == 2
