"""Texts from clients, and staff's answers to them.

`received` is called once per inbound text (the SMS webhook): it records the
text (a provider id seen before is a retry: the same answer again, nothing done
twice), finds whose number it is, acts on the keywords — STOP/START/HELP/NEW —
or passes anything else to the firm, in one chat thread per client. It returns
the answer to text back (or none). `staff_reply` texts a staff member's answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from peewee import IntegrityError

from core.messaging import notices, optouts, outbound, sms_encoding, templates
from core.messaging.templates import Rendered
from core.platform import clock, i18n
from core.platform.config import settings
from core.platform.db import database
from core.platform.errors import LedgerSyncError, Refused
from core.records import Client, ClientThread, Event, Message, Staff, Status, events

from . import invites, links

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
START_WORDS = {"START", "YES", "UNSTOP"}
HELP_WORDS = {"HELP", "INFO"}
NEW_LINK_WORDS = {"NEW", "LINK"}
MAX_SMS_CHARS = 1600
SELF_SERVE_LINKS_PER_DAY = 3
SIGN_IN_PATH = "/account/sign-in"  # web/sign_in.py


@dataclass(frozen=True)
class Inbound:
    provider_id: str
    from_addr: str
    to_addr: str
    body: str
    media: int = 0  # pictures attached


@dataclass(frozen=True)
class Answer:
    action: str  # stopped|resumed|help|new_link|forwarded|stranger|repeat
    text: str | None = None  # what to text back, if anything
    client: Client | None = None


def keyword(body: str) -> str | None:
    """The one-word keyword a text is, if it is one ("  stop. " → "STOP")."""
    word = re.sub(r"[^\w]", "", body.strip()).upper()
    known = STOP_WORDS | START_WORDS | HELP_WORDS | NEW_LINK_WORDS
    return word if word in known and len(body.strip()) <= len(word) + 2 else None


def received(text: Inbound) -> Answer:
    """Act on one inbound text, once."""
    client = whose(text.from_addr)
    held: list[int] = []
    try:
        # The record, what it causes and the answer commit together: a crash
        # half-way leaves nothing, and Twilio's retry does it all.
        with outbound.held(held), database.atomic():
            inbound = Message.create(
                firm=client.firm_id if client else None, client=client, direction="in",
                channel="sms", kind="inbound", to_addr=text.to_addr, from_addr=text.from_addr,
                body=text.body[:MAX_SMS_CHARS * 2], provider="twilio",
                provider_id=text.provider_id, status="received", sent_at=clock.now())
            answer = _act(inbound, text, client)
            if answer.text:
                _record_answer(inbound, answer)
    except IntegrityError:
        return _repeat(text)
    outbound.dispatch_held(held)
    return answer


def whose(phone: str) -> Client | None:
    """The client a number belongs to; when several firms have it, the one we
    texted last."""
    last = (Message.select(Message.client).where(
        Message.direction == "out", Message.channel == "sms", Message.to_addr == phone,
        Message.client.is_null(False)).order_by(Message.id.desc()).first())
    if last is not None:
        return last.client
    return Client.select().where(Client.phone == phone).order_by(Client.updated_at.desc()).first()


def _act(inbound: Message, text: Inbound, client: Client | None) -> Answer:
    word = keyword(text.body)
    firm = client.firm if client else None
    lang = i18n.of_client(client) if client else i18n.DEFAULT
    if word in STOP_WORDS:
        optouts.opt_out(text.from_addr, f"replied {word}", firm=firm, client=client)
        return Answer("stopped", templates.stopped_sms(firm and firm.name, lang).body, client)
    if word in START_WORDS:
        optouts.opt_in(text.from_addr, f"replied {word}", firm=firm, client=client)
        return Answer("resumed", templates.resumed_sms(firm and firm.name, lang).body, client)
    if client is None:
        return _stranger(text)
    if word in HELP_WORDS:
        return Answer("help", _help(client, lang), client)
    if word in NEW_LINK_WORDS:
        return _new_link(inbound, client)
    return _forward(inbound, text, client)


def _help(client: Client, lang: str) -> str:
    """Who is texting, why, the keywords, and where to sign in again (`/account/sign-in`)."""
    config = settings()
    return templates.help_sms(client.firm.name, config.support_email, lang,
                              sign_in=f"{config.public_base_url}{SIGN_IN_PATH}").body


def _stranger(text: Inbound) -> Answer:
    """A number that is no client's: a HELP-style answer, at most once a day."""
    if _answered_lately(text.from_addr, "answer_stranger"):
        return Answer("stranger")
    return Answer("stranger", templates.help_sms(None, settings().support_email).body)


def _answered_lately(phone: str, kind: str) -> bool:
    since = clock.now() - timedelta(days=1)
    return Message.select().where(Message.to_addr == phone, Message.kind == kind,
                                  Message.created_at >= since).exists()


def _new_link(inbound: Message, client: Client) -> Answer:
    """NEW / LINK: a new link at once when the firm allows it, else the firm is asked —
    to check the number first, when someone there said a link wasn't theirs."""
    held = invites.unchecked(client, "sms")
    if held is not None:
        word = inbound.body.strip().upper()[:8]
        outbound.dispatch(links.asked_by_text_unchecked(client, held, word))
        return Answer("new_link", templates.new_link_sms(
            client.firm.name, False, i18n.of_client(client)).body, client)
    if client.firm.clients_may_request_links and _self_serve_allowed(client):
        try:
            invites.resend(client, "sms")
            events.record("invite.new_link_by_text", client=client, actor="client")
            return Answer("new_link", templates.new_link_sms(
                client.firm.name, True, i18n.of_client(client)).body, client)
        except LedgerSyncError:
            pass  # e.g. a link went out a minute ago: the firm decides
    today = clock.now().date().isoformat()
    notice = notices.write(
        client.firm_id, "new_link_requested",
        f"{client.name} texted {inbound.body.strip().upper()[:8]}: they'd like a new link. "
        f"Send one: /ledgersync resend {client.name}",
        client=client, dedupe_key=f"notice-newlink-text-{client.id}-{today}")
    outbound.dispatch(notice)
    events.record("invite.new_link_requested", client=client, actor="client", by="text")
    return Answer("new_link", templates.new_link_sms(
        client.firm.name, False, i18n.of_client(client)).body, client)


def _self_serve_allowed(client: Client) -> bool:
    since = clock.now() - timedelta(days=1)
    recent = Event.select().where(Event.client == client, Event.kind == "invite.new_link_by_text",
                                  Event.at >= since).count()
    return recent < SELF_SERVE_LINKS_PER_DAY


def _forward(inbound: Message, text: Inbound, client: Client) -> Answer:
    """Anything else goes to the firm, in the client's thread; the client hears
    once a day that it arrived."""
    said = text.body.strip()
    if not said:
        said = "(a picture — open Twilio's console to see it)" if text.media else "(an empty text)"
    notice = notices.write(client.firm_id, "client_text", said[:MAX_SMS_CHARS], client=client,
                           dedupe_key=f"notice-text-{inbound.id}")
    outbound.dispatch(notice)
    events.record("client.texted", client=client, actor="client", chars=len(text.body))
    if _answered_lately(text.from_addr, "answer_forwarded") or optouts.is_opted_out(
            text.from_addr):
        return Answer("forwarded", None, client)
    return Answer("forwarded", templates.question_ack_sms(
        client.firm.name, i18n.of_client(client)).body, client)


def _record_answer(inbound: Message, answer: Answer) -> None:
    """The answer goes back in the webhook's response; it is recorded like any
    text we send, keyed by the inbound text, so a retried webhook gets it again."""
    measured = sms_encoding.measure(answer.text)
    with database.atomic():
        outbound.write(
            firm=inbound.firm_id, client=inbound.client_id, channel="sms",
            kind=f"answer_{answer.action}", to_addr=inbound.from_addr,
            rendered=Rendered(body=answer.text, segments=measured.count,
                              encoding=measured.encoding),
            dedupe_key=f"answer-{inbound.provider_id}")
        Message.update(status="sent", provider="reply", sent_at=clock.now()).where(
            Message.dedupe_key == f"answer-{inbound.provider_id}").execute()


def _repeat(text: Inbound) -> Answer:
    """A webhook delivered again: the same answer, nothing done twice."""
    said = Message.get_or_none(Message.dedupe_key == f"answer-{text.provider_id}")
    return Answer("repeat", said.body if said else None)


# --- staff answering in the client's thread ------------------------------------------------


def staff_reply(staff: Staff, client: Client, text: str, *, ref: str) -> Message | None:
    """Text a staff member's answer to their firm's client. `ref` names the chat
    message it came from, so a redelivered chat event sends nothing twice (None)."""
    if client.firm_id != staff.firm_id:
        raise Refused("That client belongs to another firm.")
    said = text.strip()
    if not said:
        raise Refused("Nothing to text: write the answer in words.")
    _check_textable(client)
    first = not Message.select().where(
        Message.direction == "out", Message.channel == "sms", Message.to_addr == client.phone,
        Message.status.not_in([Status.FAILED, Status.CANCELED, Status.PENDING])).exists()
    rendered = templates.staff_reply_sms(client.firm.name, said, first, i18n.of_client(client))
    if len(rendered.body) > MAX_SMS_CHARS:
        raise Refused(f"Too long for a text: {len(rendered.body):,} characters, and a text "
                      f"holds at most {MAX_SMS_CHARS:,}. Shorten it and send again.")
    with database.atomic():
        message = outbound.write(firm=client.firm_id, client=client, channel="sms", kind="reply",
                                 to_addr=client.phone, rendered=rendered,
                                 dedupe_key=f"reply-{ref}"[:120])
        if message is not None:
            events.record("client.answered", client=client, actor=events.actor_of(staff),
                          segments=rendered.segments)
    outbound.dispatch(message)
    return message


def _check_textable(client: Client) -> None:
    if not client.phone:
        raise Refused(f"Not texted: {client.name} has no mobile number on file.")
    if optouts.is_opted_out(client.phone):
        raise Refused(f"Not texted: {client.name} opted out of texts (replied STOP). They can "
                      "reply START to get texts again.")
    if client.phone_problem:
        raise Refused(f"Not texted: {client.name}'s number can't get texts "
                      f"({client.phone_problem}). Correct the number first.")


# --- the chat thread where a client's texts land -------------------------------------------


def thread_of(client_id: int, channel: str) -> ClientThread | None:
    """The client's thread in a channel, once their first text started it."""
    return ClientThread.get_or_none(ClientThread.client == client_id,
                                    ClientThread.channel == channel)


def thread_at(channel: str, ts: str) -> ClientThread | None:
    """The client thread a chat message replies in, if it is one."""
    return ClientThread.get_or_none(ClientThread.channel == channel, ClientThread.ts == ts)


def thread_started(client_id: int, channel: str, ts: str) -> None:
    """Remember the thread a client's first text started (the first one wins)."""
    ClientThread.insert(client=client_id, channel=channel, ts=ts).on_conflict_ignore().execute()
