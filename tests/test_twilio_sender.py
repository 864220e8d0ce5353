"""Texts through the real twilio SDK and HTTP, against the local Twilio stand-in,
on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest

from core.invitations import clients, invites
from core.messaging import deliveries, optouts, outbound, outbox
from core.messaging.templates import Rendered
from core.platform.clock import now as utc_now
from core.platform.errors import Refused
from core.records import Client, Message
from sms import errors
from tests.twilio_standin import AUTH_TOKEN, FROM_NUMBER

CALLBACK = "https://connect.example.com/sms/status"
SERVICE = "MG" + "1" * 32


def notices_of(kind: str) -> list[Message]:
    return list(Message.select().where(Message.channel == "slack",
                                       Message.kind == f"notice_{kind}"))


def queued(firm, client, body: str = "Hi Maria, a note from Smith & Co") -> Message:
    return outbound.write(firm=firm, client=client, channel="sms", kind="reminder",
                          to_addr=client.phone, rendered=Rendered(body=body),
                          dedupe_key=f"test-{body}-{utc_now():%H%M%S}")


def test_invite_text_reaches_twilio(clock, maria, twilio, twilio_settings):
    sent = invites.send(maria, "sms")

    [text] = twilio.sent()
    assert text.form["To"] == "+12125550134"
    assert text.form["From"] == FROM_NUMBER
    assert "MessagingServiceSid" not in text.form
    assert text.form["Body"] == outbox.text(sent.message)
    assert text.form["Body"] != sent.message.body  # the database keeps the link masked
    assert "https://connect.example.com/i/" in text.form["Body"]
    assert text.form["StatusCallback"] == CALLBACK
    message = sent.message
    assert (message.provider, message.provider_id, message.status) == ("twilio", text.sid, "queued")
    assert re.fullmatch(r"SM[0-9a-f]{32}", message.provider_id)
    assert message.sent_at == utc_now()
    fetched = outbound.sender_for("sms").client().messages(text.sid).fetch()
    assert (fetched.status, fetched.to) == ("queued", "+12125550134")


def test_messaging_service_instead_of_from_number(maria, twilio, twilio_settings):
    twilio_settings(twilio_messaging_service_sid=SERVICE)
    sent = invites.send(maria, "sms")

    [text] = twilio.sent()
    assert text.form["MessagingServiceSid"] == SERVICE
    assert "From" not in text.form
    assert text.resource["status"] == "accepted"
    assert sent.message.status == "queued"
    assert sent.message.provider_id == text.sid


@pytest.mark.parametrize(("number", "code", "problem"), [
    ("+15005550001", "21211", "not a valid phone number"),
    ("+15005550009", "21614", "not a mobile number"),
])
def test_number_that_cant_take_texts(firm, twilio, twilio_settings, number, code, problem):
    client = clients.add(firm, "Pat Landline", phone=number)
    message = invites.send(client, "sms").message

    assert twilio.sent() == []
    assert (message.status, message.provider, message.error_code) == ("failed", "twilio", code)
    assert message.error_message == errors.reason(code)
    assert Client.get_by_id(client.id).phone_problem == problem
    [notice] = notices_of("delivery_failed")
    assert errors.reason(code) in notice.body and "Pat Landline" in notice.body
    with pytest.raises(Refused, match="can't get texts"):
        invites.resend(Client.get_by_id(client.id), "sms")


def test_opted_out_with_twilio(firm, twilio, twilio_settings):
    client = clients.add(firm, "Sam Stopped", phone="+15005550004")
    message = invites.send(client, "sms").message

    assert (message.status, message.error_code) == ("failed", "21610")
    assert message.error_message == "the client has opted out of texts (replied STOP)"
    assert optouts.is_opted_out("+15005550004")
    assert len(notices_of("opted_out")) == 1
    assert len(notices_of("delivery_failed")) == 1
    with pytest.raises(Refused, match="opted out"):
        invites.resend(client, "sms")
    assert twilio.sent() == []


@pytest.mark.parametrize(("status", "code"), [
    (429, 20429), (429, None), (500, None), (503, None), (400, 21611),
])
def test_busy_twilio_is_tried_again(clock, firm, maria, twilio, twilio_settings, status, code):
    message = queued(firm, maria)
    twilio.fail_next(1, status=status, code=code)

    with pytest.raises(outbound.TransientFailure):
        deliveries.deliver(message.id)
    waiting = message.refreshed()
    assert (waiting.status, waiting.error_message) == ("pending", "Twilio is busy; trying again")
    assert twilio.sent() == []

    delivered = deliveries.deliver(message.id)
    assert (delivered.status, delivered.attempts) == ("queued", 2)
    assert delivered.provider_id == twilio.sent()[0].sid
    assert notices_of("delivery_failed") == []


def test_twilio_unreachable_is_tried_again(firm, maria, twilio_settings):
    twilio_settings(twilio_api_url="http://127.0.0.1:1")
    message = queued(firm, maria)

    with pytest.raises(outbound.TransientFailure, match="Twilio unreachable"):
        deliveries.deliver(message.id)
    assert message.refreshed().status == "pending"


def test_other_refusal_fails_in_plain_words(firm, maria, twilio, twilio_settings):
    message = queued(firm, maria)
    twilio.fail_next(1, status=400, code=21617, message="The concatenated message body exceeds")

    failed = deliveries.deliver(message.id)
    assert (failed.status, failed.error_code, failed.error_message) == (
        "failed", "21617", "the text is too long")
    assert Client.get_by_id(maria.id).phone_problem is None
    assert len(notices_of("delivery_failed")) == 1


def test_region_from_environment_still_reaches_stand_in(monkeypatch, maria, twilio,
                                                        twilio_settings):
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    outbound.reset_senders()
    assert invites.send(maria, "sms").message.status == "queued"
    assert len(twilio.sent()) == 1


def test_find_sent_after_a_crash_mid_send(clock, firm, maria, twilio, twilio_settings):
    took, lost = queued(firm, maria, "first text"), queued(firm, maria, "second text")
    for message in (took, lost):
        Message.update(status="sending", attempts=1, updated_at=utc_now()).where(
            Message.id == message.id).execute()
    outbound.sender_for("sms").send(took.refreshed())  # Twilio took it; then the worker died
    clock.shift(timedelta(seconds=30))

    found = deliveries.recover(took.id)
    assert (found.status, found.provider, found.provider_id) == (
        "queued", "twilio", twilio.sent()[0].sid)
    assert deliveries.recover(lost.id).status == "pending"
    assert len(twilio.sent()) == 1


def test_find_sent_ignores_an_older_text_with_the_same_body(clock, firm, maria, twilio,
                                                            twilio_settings):
    message = queued(firm, maria, "same words")
    outbound.sender_for("sms").send(message)  # an earlier text with these words
    clock.shift(timedelta(minutes=10))
    Message.update(status="sending", attempts=1, updated_at=utc_now()).where(
        Message.id == message.id).execute()

    assert outbound.sender_for("sms").find_sent(message.refreshed()) is None
    twilio.fail_next(1, status=500)
    assert deliveries.recover(message.id).status == "pending"


def test_auth_token_and_bodies_never_logged(caplog, firm, maria, twilio, twilio_settings):
    for name in ("sms", "core", "twilio", "urllib3", "werkzeug"):
        caplog.set_level(logging.DEBUG, logger=name)  # not peewee's SQL (off in production)
    invites.send(maria, "sms")
    landline = queued(firm, clients.add(firm, "Pat Landline", phone="+15005550009"))
    assert outbound.sender_for("sms").send(landline).error_code == "21614"
    twilio.fail_next(1, status=500)
    busy = queued(firm, maria, "private words for Maria")
    with pytest.raises(outbound.TransientFailure):
        deliveries.deliver(busy.id)
    outbound.sender_for("sms").find_sent(busy.refreshed())
    twilio_settings(twilio_auth_token=AUTH_TOKEN + "-wrong")
    with pytest.raises(outbound.TransientFailure, match="credentials"):
        deliveries.deliver(busy.id)

    assert "Twilio answered 401" in caplog.text
    assert AUTH_TOKEN not in caplog.text
    assert "private words" not in caplog.text and "Smith & Co invites you" not in caplog.text
