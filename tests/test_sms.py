"""Clients' texts: Twilio's signed webhooks into the real Flask app, answers in
TwiML, texts out through the twilio SDK to the local Twilio stand-in, and the
Slack thread bridge through the Slack stand-in."""

from __future__ import annotations

from datetime import timedelta
from xml.etree import ElementTree

import pytest

from core.invitations import clients, invites, reminders
from core.messaging import deliveries, optouts, outbound
from core.platform.errors import Refused
from core.records import ClientThread, Event, Firm, Message
from tests.slack_fixtures import slack_app
from tests.slack_requests import event
from tests.slack_standin import TEAM
from tests.twilio_standin import AUTH_TOKEN, FROM_NUMBER

PUBLIC = "https://connect.example.com"
MARIA = "+12125550134"
STRANGER = "+13105550177"


@pytest.fixture
def app(sqlite_database, smith, slack, twilio_settings, clock):
    Firm.update(notify_channel="CNOTICE").where(Firm.id == smith.id).execute()
    return slack_app(slack)


@pytest.fixture
def maria(smith):
    return clients.find(smith, "Maria Gonzalez")


_sids = iter(range(10_000))


def text(app, body: str, *, sender: str = MARIA, sid: str | None = None, media: int = 0,
         token: str = AUTH_TOKEN, url: str | None = None, tamper: dict | None = None):
    """Post an inbound text as Twilio does; returns (status code, TwiML reply text)."""
    form = {"MessageSid": sid or f"SM{next(_sids):032d}", "AccountSid": "AC" + "0" * 32,
            "From": sender, "To": FROM_NUMBER, "Body": body, "NumMedia": str(media)}
    signature = _sign(url or f"{PUBLIC}/sms/inbound", form, token)
    response = app.post("/sms/inbound", data={**form, **(tamper or {})},
                        headers={"X-Twilio-Signature": signature})
    return response.status_code, _reply(response)


def _sign(url: str, form: dict, token: str) -> str:
    from twilio.request_validator import RequestValidator

    return RequestValidator(token).compute_signature(url, form)


def _reply(response) -> str | None:
    if response.status_code != 200:
        return None
    assert response.mimetype == "text/xml"
    found = ElementTree.fromstring(response.data).find("Message")
    return found.text if found is not None else None


def status(app, form: dict):
    return app.post("/sms/status", data=form,
                    headers={"X-Twilio-Signature": _sign(f"{PUBLIC}/sms/status", form,
                                                         AUTH_TOKEN)})


def notices(slack) -> list[dict]:
    return slack.of("chat.postMessage")


# --- keywords ----------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["STOP", "stop", "  Stop  ", "STOPALL", "unsubscribe", "Cancel",
                                  "END", "quit", "REVOKE", "optout", "stop."])
def test_every_stop_word_opts_out(app, maria, word):
    code, reply = text(app, word)
    assert code == 200
    assert optouts.is_opted_out(MARIA)
    assert reply == ("You won't get more texts from Smith & Co via LedgerSync. "
                     "Reply START to get them again.")


@pytest.mark.parametrize("word", ["START", "yes", " Unstop "])
def test_every_start_word_opts_back_in(app, maria, word):
    text(app, "STOP")
    code, reply = text(app, word)
    assert not optouts.is_opted_out(MARIA)
    assert reply.startswith("You'll get texts from Smith & Co via LedgerSync again.")


def test_the_firm_hears_of_an_opt_out_in_its_channel(app, maria, slack):
    text(app, "STOP")
    assert "Maria Gonzalez opted out of messages" in notices(slack)[-1]["text"]


@pytest.mark.parametrize("word", ["HELP", "info", " Help "])
def test_help_says_who_why_how_to_stop_and_support(app, maria, word):
    _, reply = text(app, word)
    assert "Smith & Co uses LedgerSync to ask you to connect your bank accounts" in reply
    assert "STOP" in reply and "support@ledgersync.com" in reply
    stored = Message.get(Message.kind == "answer_help")
    assert stored.to_addr == MARIA and stored.segments <= 2 and stored.encoding == "GSM-7"


def test_a_stop_word_inside_a_sentence_is_a_question_not_a_stop(app, maria, slack):
    text(app, "Please don't stop my account")
    assert not optouts.is_opted_out(MARIA)
    assert "Please don't stop my account" in notices(slack)[-1]["text"]


@pytest.mark.parametrize("word", ["NEW", "link"])
def test_new_asks_the_firm_with_a_resend_button(app, maria, slack, twilio, word):
    invites.send(maria, "sms")
    _, reply = text(app, word)
    assert reply == "Thanks, we've asked Smith & Co to send you a new link."
    notice = notices(slack)[-1]
    assert "Maria Gonzalez texted" in notice["text"] and "new link" in notice["text"]
    assert '"action_id": "resend"' in str(notice["blocks"]).replace("'", '"')
    assert len(twilio.sent()) == 1  # only the invite; nothing sent without staff


def test_new_sends_a_link_at_once_when_the_firm_allows_it(app, smith, maria, twilio, clock):
    Firm.update(clients_may_request_links=True).where(Firm.id == smith.id).execute()
    first = invites.send(maria, "sms").invite
    clock.shift(timedelta(hours=2))
    _, reply = text(app, "new")
    assert reply == "A new link from Smith & Co is on its way in the next text."
    texts = twilio.sent(MARIA)
    assert len(texts) == 2 and f"{PUBLIC}/i/" in texts[-1].body
    assert first.refreshed().superseded_at is not None


def test_a_stranger_gets_one_help_answer_a_day_and_nothing_is_forwarded(app, smith, slack,
                                                                        clock):
    posted = len(notices(slack))
    _, first = text(app, "hello?", sender=STRANGER)
    _, second = text(app, "anyone?", sender=STRANGER)
    assert "LedgerSync sends messages for accounting firms" in first
    assert second is None
    clock.shift(timedelta(days=1, minutes=1))
    _, next_day = text(app, "hello again", sender=STRANGER)
    assert next_day is not None
    assert len(notices(slack)) == posted


# --- questions, threads and answers ------------------------------------------------------


def staff_says(app, thread_ts: str, words: str, *, ts: str = "1700000100.000200",
               user: str = "UANN", retry: int | None = None, channel: str = "CNOTICE"):
    return event(app, {"type": "message", "channel": channel, "user": user, "text": words,
                       "ts": ts, "thread_ts": thread_ts, "channel_type": "channel"},
                 team=TEAM, retry=retry)


def test_the_thread_round_trip(app, maria, slack, twilio):
    invites.send(maria, "sms")
    _, reply = text(app, "Which bank do I pick?")
    assert reply == ("Thanks, Smith & Co got your message and will reply here. "
                     "Reply STOP to opt out.")
    head = notices(slack)[-1]
    assert "thread_ts" not in head
    assert "*Maria Gonzalez* ((212) 555-0134) texted:" in head["blocks"][0]["text"]["text"]
    thread = ClientThread.get(ClientThread.client == maria)
    _, again = text(app, "The one for my business account")
    follow_up = notices(slack)[-1]
    assert follow_up["thread_ts"] == thread.ts and again is None  # one thank-you a day

    assert staff_says(app, thread.ts, "Pick Chase &amp; Co — the “business” one").status_code == 200
    answer = twilio.wait_for(2, to=MARIA)[-1]
    assert answer.body == 'Smith & Co: Pick Chase & Co - the "business" one'
    assert slack.wait_for("reactions.add")[0]["name"] == "white_check_mark"
    stored = Message.get(Message.kind == "reply")
    assert stored.provider == "twilio" and stored.provider_id == answer.sid
    assert Event.select().where(Event.kind == "client.answered").count() == 1


def test_a_redelivered_slack_event_texts_once(app, maria, slack, twilio):
    invites.send(maria, "sms")
    text(app, "Hi")
    thread = ClientThread.get(ClientThread.client == maria)
    staff_says(app, thread.ts, "Hello Maria", ts="1700000200.000100")
    staff_says(app, thread.ts, "Hello Maria", ts="1700000200.000100", retry=1)
    twilio.wait_for(2, to=MARIA)
    slack.wait_for("reactions.add")
    assert [t.body for t in twilio.sent(MARIA)].count("Smith & Co: Hello Maria") == 1


def test_the_first_text_to_a_number_names_the_firm_and_stop(app, smith, maria, twilio):
    from core.invitations import client_texts

    staff = smith.staff.first()
    client_texts.staff_reply(staff, maria, "Your documents are ready", ref="first")
    client_texts.staff_reply(staff, maria, "Call us when you can", ref="second")
    first, second = (t.body for t in twilio.wait_for(2, to=MARIA))
    assert first == "Smith & Co: Your documents are ready Reply STOP to opt out."
    assert second == "Smith & Co: Call us when you can"


def test_emoji_and_long_answers(app, maria, slack, twilio):
    invites.send(maria, "sms")
    text(app, "ok 👍")
    assert "ok 👍" in notices(slack)[-1]["blocks"][0]["text"]["text"]
    thread = ClientThread.get(ClientThread.client == maria)
    staff_says(app, thread.ts, "Great 🎉", ts="1700000300.000100")
    stored = twilio.wait_for(2, to=MARIA)[-1]
    assert stored.body == "Smith & Co: Great 🎉"
    assert Message.get(Message.kind == "reply").encoding == "UCS-2"
    staff_says(app, thread.ts, "x" * 1600, ts="1700000300.000200")
    warning = slack.wait_for("chat.postEphemeral")[0]
    assert "Too long for a text: 1,612 characters" in warning["text"]
    assert warning["user"] == "UANN" and warning["thread_ts"] == thread.ts
    assert len(twilio.sent(MARIA)) == 2


def test_long_empty_and_picture_texts_reach_the_thread(app, maria, slack):
    text(app, "a" * 1600)
    assert "a" * 1600 in notices(slack)[-1]["blocks"][0]["text"]["text"]
    text(app, "", media=1)
    assert "(a picture" in notices(slack)[-1]["blocks"][0]["text"]["text"]
    text(app, "   ")
    assert "(an empty text)" in notices(slack)[-1]["blocks"][0]["text"]["text"]


def test_user_text_is_escaped_in_slack(app, maria, slack):
    text(app, "<!channel> *bold* <https://evil.example|click>")
    shown = notices(slack)[-1]["blocks"][0]["text"]["text"]
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown


def test_other_firms_and_strangers_cannot_answer_in_a_thread(app, maria, slack, twilio, other):
    text(app, "Hi")
    thread = ClientThread.get(ClientThread.client == maria)
    staff_says(app, thread.ts, "I am not connected", user="UNOBODY", ts="1700000400.000100")
    assert "Connect your LedgerSync account" in slack.wait_for("chat.postEphemeral")[0]["text"]
    staff_says(app, thread.ts, "From the other firm", user="UOLGA", ts="1700000400.000200")
    slack.wait_for("chat.postEphemeral", 2)
    assert twilio.sent(MARIA) == []


# --- opt-outs are honoured by every path ----------------------------------------------


def test_an_opt_out_is_honoured_everywhere(app, maria, slack, twilio, clock):
    sent = invites.send(maria, "sms")
    text(app, "Hello, question")
    thread = ClientThread.get(ClientThread.client == maria)
    text(app, "STOP")
    with pytest.raises(Refused, match="opted out"):
        invites.resend(maria, "sms")
    with pytest.raises(Refused, match="opted out"):
        invites.remind(maria, force=True)
    clock.shift(timedelta(days=3, hours=1))
    outcome = reminders.send_automatic(sent.invite.id)
    assert outcome.result != "sent"
    staff_says(app, thread.ts, "Are you there?")
    assert "opted out" in slack.wait_for("chat.postEphemeral")[0]["text"]
    assert len(twilio.sent(MARIA)) == 1  # the invite, before the STOP


def test_carrier_opt_out_blocks_a_message_already_queued(app, maria, twilio):
    held: list[int] = []
    with outbound.held(held):
        invites.send(maria, "sms")
    text(app, "STOP")
    deliveries.deliver_now(held)
    assert twilio.sent(MARIA) == []
    assert Message.get(Message.kind == "invite").status == "canceled"


# --- signatures and retries -----------------------------------------------------------------


@pytest.mark.parametrize("how", ["wrong token", "wrong url", "tampered body", "no signature"])
def test_a_bad_signature_is_refused_and_changes_nothing(app, maria, how):
    kwargs = {"wrong token": {"token": "not-the-token"},
              "wrong url": {"url": "http://localhost/sms/inbound"},
              "tampered body": {"tamper": {"Body": "STOP"}},
              "no signature": {}}[how]
    before = Message.select().count()
    if how == "no signature":
        code = app.post("/sms/inbound", data={"MessageSid": "SM1", "From": MARIA,
                                              "Body": "STOP"}).status_code
    else:
        code, _ = text(app, "hello", **kwargs)
    assert code == 403
    assert Message.select().count() == before and not optouts.is_opted_out(MARIA)


def test_behind_a_proxy_the_public_url_is_what_counts(app, maria):
    signature = _sign(f"{PUBLIC}/sms/inbound?x=1", form := {
        "MessageSid": "SMproxy", "From": MARIA, "To": FROM_NUMBER, "Body": "HELP"}, AUTH_TOKEN)
    response = app.post("/sms/inbound?x=1", data=form, base_url="http://10.0.0.5:8080",
                        headers={"X-Twilio-Signature": signature,
                                 "X-Forwarded-Proto": "https", "Host": "10.0.0.5:8080"})
    assert response.status_code == 200 and "Smith & Co" in _reply(response)


def test_a_retried_webhook_is_acted_on_once(app, maria, slack):
    invites.send(maria, "sms")
    first = text(app, "Is this legit?", sid="SM" + "7" * 32)
    posted = len(notices(slack))
    second = text(app, "Is this legit?", sid="SM" + "7" * 32)
    assert first == second
    assert len(notices(slack)) == posted
    assert Message.select().where(Message.direction == "in").count() == 1


# --- delivery receipts -------------------------------------------------------------------


def test_receipts_move_forward_only(app, maria, twilio):
    invites.send(maria, "sms")
    sid = twilio.sent(MARIA)[0].sid
    sent, delivered = twilio.callbacks_for(sid, "sent", "delivered")
    assert status(app, delivered).status_code == 204
    status(app, sent)  # late and out of order
    status(app, delivered)  # twice
    message = Message.get(Message.provider_id == sid)
    assert message.status == "delivered"


def test_an_undelivered_landline_flags_the_phone_and_tells_the_firm(app, maria, twilio, slack):
    invites.send(maria, "sms")
    sid = twilio.sent(MARIA)[0].sid
    (failed,) = twilio.callbacks_for(sid, "undelivered", error_code=30006)
    status(app, failed)
    message = Message.get(Message.provider_id == sid)
    assert message.status == "undelivered" and message.error_code == "30006"
    assert maria.refreshed().phone_problem == "not a mobile number"
    assert ("A text to Maria Gonzalez could not be delivered: the number is a landline or "
            "can't get texts") in notices(slack)[-1]["text"]
    with pytest.raises(Refused, match="can't get texts"):
        invites.resend(maria.refreshed(), "sms")


def test_a_receipt_faster_than_the_sender_is_kept_until_the_message_is(app, maria, twilio):
    form = {"MessageSid": "SM" + "e" * 32, "MessageStatus": "delivered", "To": MARIA}
    assert status(app, form).status_code == 204
    message = outbound.write(firm=maria.firm_id, client=maria, channel="sms", kind="invite",
                             to_addr=MARIA, rendered=invites.templates.Rendered(body="x"))
    deliveries.finish(message, outbound.SendResult("queued", "twilio", "SM" + "e" * 32))
    assert message.refreshed().status == "delivered"


def test_a_bad_receipt_signature_is_refused(app, maria, twilio):
    invites.send(maria, "sms")
    sid = twilio.sent(MARIA)[0].sid
    (form,) = twilio.callbacks_for(sid, "delivered")
    response = app.post("/sms/status", data=form, headers={"X-Twilio-Signature": "bad"})
    assert response.status_code == 403
    assert Message.get(Message.provider_id == sid).status == "queued"
